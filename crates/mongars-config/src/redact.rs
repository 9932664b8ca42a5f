//! Credentials inside URLs (`http://user:password@host`) hidden wherever
//! settings are shown. Any setting may hold a URL, lists included (Ray
//! endpoints are comma-separated), so the rule applies to every string.

use crate::secret::REDACTED;

/// `text` with the user information of every `scheme://user:pass@host`
/// replaced by `[REDACTED]`; everything else is left as it was.
pub fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| "/?#,;\"' \t\r\n".contains(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Apply [`redact_url_credentials`] to every string of a TOML tree.
pub(crate) fn redact_toml(value: &mut toml::Value) {
    match value {
        toml::Value::String(s) if s.contains("://") => *s = redact_url_credentials(s),
        toml::Value::Array(items) => items.iter_mut().for_each(redact_toml),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| redact_toml(v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url_credentials as r;

    #[test]
    fn userinfo_is_hidden_and_the_rest_kept() {
        assert_eq!(
            r("http://user:pass@host:8080/v1"),
            "http://[REDACTED]@host:8080/v1"
        );
        assert_eq!(r("http://host:8080/v1?a=b@c"), "http://host:8080/v1?a=b@c");
        assert_eq!(
            r("http://a:b@h1:1, http://h2:2,http://c@h3"),
            "http://[REDACTED]@h1:1, http://h2:2,http://[REDACTED]@h3"
        );
        assert_eq!(r("redis://:pw@r:6379/0"), "redis://[REDACTED]@r:6379/0");
        assert_eq!(r("no url here"), "no url here");
        assert_eq!(r("http://p%40ss:w@rd@host/"), "http://[REDACTED]@host/");
        assert_eq!(r("é://ü@x"), "é://[REDACTED]@x");
    }
}
