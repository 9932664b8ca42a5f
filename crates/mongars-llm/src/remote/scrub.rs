//! What a remote server says about an error, made safe to show and log.
//!
//! Upstream error bodies are not trusted: a misconfigured proxy or backend may
//! echo the request's `Authorization` header, a key, or a token back in its
//! message. Only a short, printable reason is kept, with the backend's own
//! key and anything shaped like a credential replaced by `[REDACTED]`.

/// Longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 120;
const REDACTED: &str = "[REDACTED]";

/// `text` made safe: known `secrets` and credential-like words removed,
/// control characters dropped, whitespace collapsed, cut to
/// [`MAX_REASON_CHARS`].
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_string();
    for secret in secrets.iter().filter(|k| k.len() >= 4) {
        s = s.replace(secret, REDACTED);
    }
    let mut out: Vec<String> = Vec::new();
    let mut redact_next = false;
    for word in s.split_whitespace() {
        let clean: String = word.chars().filter(|c| !c.is_control()).collect();
        if clean.is_empty() {
            continue;
        }
        if redact_next && !clean.is_empty() {
            out.push(REDACTED.into());
            redact_next = false;
            continue;
        }
        let bare = clean.trim_matches(|c: char| "\"'`,;:()[]{}<>".contains(c));
        let lower = bare.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "bearer" | "basic" | "token" | "apikey" | "api-key"
        ) {
            redact_next = true;
            out.push(clean);
        } else if looks_like_credential(bare) {
            out.push(clean.replace(bare, REDACTED));
        } else {
            out.push(clean);
        }
    }
    let mut joined = out.join(" ");
    if let Some((i, _)) = joined.char_indices().nth(MAX_REASON_CHARS) {
        joined.truncate(i);
        joined.push('…');
    }
    if joined.is_empty() {
        "no message".into()
    } else {
        joined
    }
}

/// Key prefixes of common services, JWTs, `key=value` pairs whose key names
/// a secret, and long runs of letters and digits that read like random keys.
fn looks_like_credential(word: &str) -> bool {
    const PREFIXES: [&str; 8] = ["sk-", "sk_", "mg_", "eyJ", "ghp_", "xox", "hf_", "AKIA"];
    if PREFIXES.iter().any(|p| word.starts_with(p)) && word.len() >= 8 {
        return true;
    }
    if let Some((k, v)) = word.split_once(['=', ':']) {
        let k = k.to_ascii_lowercase();
        if !v.is_empty()
            && ["key", "token", "secret", "password", "auth"]
                .iter()
                .any(|n| k.contains(n))
        {
            return true;
        }
    }
    let long = word.len() >= 24
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./+=".contains(c));
    long && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn keys_tokens_and_headers_are_removed() {
        let key = "local-key-123";
        let body = format!("invalid api key: Authorization: Bearer {key} was refused");
        let s = scrub(&body, &[key]);
        assert!(!s.contains(key), "{s}");
        assert!(s.contains("was refused"), "{s}");
        for leaky in [
            "Incorrect API key provided: sk-proj-abcdefghijklmnop1234",
            "header was 'Bearer abcdef'",
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig",
            "bad request api_key=hunter2hunter2",
            "random 0123456789abcdef0123456789abcdef tail",
            "Basic dXNlcjpwYXNz",
        ] {
            let s = scrub(leaky, &[]);
            for secret in [
                "sk-proj",
                "abcdef'",
                "eyJhbG",
                "hunter2",
                "0123456789abcdef0123",
                "dXNlcjpwYXNz",
            ] {
                assert!(!s.contains(secret), "{leaky:?} -> {s:?}");
            }
            assert!(s.contains("[REDACTED]"), "{leaky:?} -> {s:?}");
        }
    }

    #[test]
    fn plain_messages_survive_shortened() {
        assert_eq!(scrub("model not found", &[]), "model not found");
        assert_eq!(scrub("  a\n\tb \u{7} ", &[]), "a b");
        assert_eq!(scrub("", &[]), "no message");
        assert!(scrub(&"word ".repeat(100), &[]).chars().count() <= 121);
    }
}
