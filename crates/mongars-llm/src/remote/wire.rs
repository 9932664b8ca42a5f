//! The HTTP plumbing every remote backend shares: the client (connect
//! timeout, TLS from settings), the bearer key, status and transport errors
//! mapped onto [`LlmError`] with whatever the server said scrubbed of
//! secrets, bounded body reads and content-type checks.

use super::{RemoteConfig, scrub};
use futures_util::StreamExt;
use mongars_core::domain::{FinishReason, SamplingParams};
use mongars_core::ports::LlmError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use std::time::Duration;

/// Longest error body read for its message.
const MAX_ERROR_BODY: usize = 4096;

pub(crate) fn client(cfg: &RemoteConfig) -> Result<reqwest::Client, LlmError> {
    cfg.tls
        .client_builder()
        .connect_timeout(cfg.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| LlmError::Unavailable(format!("HTTP client: {e}")))
}

pub(crate) fn with_auth(
    req: reqwest::RequestBuilder,
    cfg: &RemoteConfig,
) -> reqwest::RequestBuilder {
    match &cfg.api_key {
        Some(key) => req.bearer_auth(key),
        None => req,
    }
}

/// A transport failure, without the URL (it may carry credentials).
pub fn transport(e: reqwest::Error) -> LlmError {
    let e = e.without_url();
    if let Some(why) = mongars_net::tls_failure(&e) {
        LlmError::Tls(why)
    } else if e.is_timeout() {
        LlmError::Timeout(format!("{e}"))
    } else if e.is_decode() || e.is_body() {
        LlmError::Transport(format!("body: {e}"))
    } else {
        LlmError::Transport(format!("{e}"))
    }
}

/// `Retry-After` in seconds, when given as a number (dates are ignored).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(300.0)))
}

/// Turn a non-success answer into an error: its status, and the server's
/// own message (from `{"error": ...}` JSON, or the text) scrubbed of
/// credentials. 408, 429 and 503 with `Retry-After` ask to be retried later.
pub(crate) async fn status_error(resp: reqwest::Response, cfg: &RemoteConfig) -> LlmError {
    let status = resp.status().as_u16();
    let retry = retry_after(resp.headers());
    let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
    let message = error_message(&body, cfg);
    match (status, retry) {
        (408 | 429 | 503, Some(after)) => LlmError::Busy {
            status,
            after_ms: after.as_millis() as u64,
        },
        (408 | 429, None) => LlmError::Unavailable(format!("status {status}: {message}")),
        (400..=499, _) => LlmError::Rejected { status, message },
        _ => LlmError::Unavailable(format!("status {status}: {message}")),
    }
}

/// A message a server sent about a failure, safe to keep (see [`scrub`]).
pub(crate) fn upstream_message(text: &str, cfg: &RemoteConfig) -> String {
    let key = cfg.api_key.as_deref().unwrap_or("");
    scrub::scrub(text, &[key])
}

/// An error whose text came (partly) from a server, scrubbed like
/// [`upstream_message`]: parse errors quote what they could not parse.
pub(crate) fn scrubbed(e: LlmError, key: Option<&str>) -> LlmError {
    let s = |m: String| scrub::scrub(&m, &[key.unwrap_or("")]);
    match e {
        LlmError::Unavailable(m) => LlmError::Unavailable(s(m)),
        LlmError::Transport(m) => LlmError::Transport(s(m)),
        LlmError::Timeout(m) => LlmError::Timeout(s(m)),
        LlmError::Malformed(m) => LlmError::Malformed(s(m)),
        LlmError::Failed(m) => LlmError::Failed(s(m)),
        LlmError::Rejected { status, message } => LlmError::Rejected {
            status,
            message: s(message),
        },
        other => other,
    }
}

fn error_message(body: &[u8], cfg: &RemoteConfig) -> String {
    let text = String::from_utf8_lossy(body);
    let from_json = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            e.as_str()
                .map(str::to_string)
                .or_else(|| e.get("message")?.as_str().map(str::to_string))
        });
    upstream_message(&from_json.unwrap_or_else(|| text.into_owned()), cfg)
}

async fn read_limited(resp: reqwest::Response, limit: usize) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.ok()?;
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Some(body)
}

/// Read a whole (non-streamed) JSON body of at most `limit` bytes, as text.
pub(crate) async fn read_text(resp: reqwest::Response, limit: usize) -> Result<String, LlmError> {
    expect_content_type(&resp, &["json"])?;
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport)?;
        if body.len() + chunk.len() > limit {
            return Err(LlmError::Malformed(format!(
                "body larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| LlmError::Malformed("invalid UTF-8 in body".into()))
}

/// [`read_text`], parsed as JSON.
pub(crate) async fn read_json(
    resp: reqwest::Response,
    limit: usize,
) -> Result<serde_json::Value, LlmError> {
    let text = read_text(resp, limit).await?;
    serde_json::from_str(&text).map_err(|e| LlmError::Malformed(format!("bad JSON: {e}")))
}

/// `GET url` and the names under `list_key` of the JSON answer, each taken
/// from the first of `name_keys` it has (model listings of Ollama and
/// OpenAI-compatible servers).
pub(crate) async fn list_names(
    http: &reqwest::Client,
    cfg: &RemoteConfig,
    url: &str,
    list_key: &str,
    name_keys: &[&str],
) -> Result<Vec<String>, LlmError> {
    let resp = with_auth(http.get(url), cfg)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(transport)?;
    if !resp.status().is_success() {
        return Err(status_error(resp, cfg).await);
    }
    let body = read_json(resp, 4 << 20).await?;
    let items = body
        .get(list_key)
        .and_then(|m| m.as_array())
        .ok_or_else(|| LlmError::Malformed(format!("model listing without {list_key:?}")))?;
    Ok(items
        .iter()
        .filter_map(|m| name_keys.iter().find_map(|k| m.get(*k)?.as_str()))
        .map(str::to_string)
        .collect())
}

/// Refuse a body whose content type is none of `accepted` (substrings).
pub(crate) fn expect_content_type(
    resp: &reqwest::Response,
    accepted: &[&str],
) -> Result<(), LlmError> {
    let ct = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if accepted.iter().any(|a| ct.contains(a)) {
        Ok(())
    } else {
        Err(LlmError::Malformed(format!(
            "unexpected content type {:?} (expected {})",
            ct,
            accepted.join(" or ")
        )))
    }
}

/// Add `stop` (when there are stop strings) and `seed` (when set) to a JSON
/// object of sampling options: both protocols that take them leave them out
/// otherwise.
pub(crate) fn add_stop_and_seed(options: &mut serde_json::Value, s: &SamplingParams) {
    if !s.stop.is_empty() {
        options["stop"] = serde_json::json!(s.stop);
    }
    if let Some(seed) = s.seed {
        options["seed"] = serde_json::json!(seed);
    }
}

/// Map a server's finish reason onto ours.
pub(crate) fn finish_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("length") | Some("max_tokens") => FinishReason::Length,
        _ => FinishReason::Stop,
    }
}

/// Join a base URL and a path, without doubling `/v1`.
pub(crate) fn join(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.starts_with("/v1/") && base.ends_with("/v1") {
        format!("{base}{}", &path[3..])
    } else {
        format!("{base}{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::RemoteConfig;

    #[test]
    fn joins_without_doubling_v1() {
        assert_eq!(join("http://h:1/", "/v1/models"), "http://h:1/v1/models");
        assert_eq!(join("http://h:1/v1", "/v1/models"), "http://h:1/v1/models");
        assert_eq!(join("http://h:1", "/api/chat"), "http://h:1/api/chat");
    }

    fn cfg(key: Option<&str>) -> RemoteConfig {
        RemoteConfig {
            name: "o".into(),
            urls: vec!["http://h".into()],
            model: "m".into(),
            api_key: key.map(str::to_string),
            context_tokens: 4096,
            connect_timeout: Duration::from_secs(1),
            tls: mongars_net::Tls::public_roots(),
        }
    }

    #[test]
    fn error_messages_come_from_json_or_text_without_secrets() {
        let c = cfg(Some("the-backend-key"));
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#, &c),
            "model not found"
        );
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key"}}"#, &c),
            "bad key"
        );
        assert_eq!(error_message(b"  oops ", &c), "oops");
        assert_eq!(error_message(b"", &c), "no message");
        assert!(error_message(&[b'x'; 1000], &c).chars().count() <= 121);
        let echoed = br#"{"error":{"message":"Incorrect key the-backend-key in Authorization: Bearer the-backend-key"}}"#;
        let m = error_message(echoed, &c);
        assert!(!m.contains("the-backend-key"), "{m}");
    }

    #[test]
    fn config_debug_hides_the_key() {
        assert!(!format!("{:?}", cfg(Some("sk-very-secret"))).contains("sk-very"));
    }
}
