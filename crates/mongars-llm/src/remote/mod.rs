//! Backends reached over HTTP: Ollama, OpenAI-compatible servers and Ray
//! Serve. They share the plumbing here: one client per backend with a connect
//! timeout, status mapping, content-type checks and a bounded line reader for
//! streamed bodies (NDJSON and server-sent events).
//!
//! Every failure becomes an [`LlmError`] with a short, bounded message. Keys
//! are sent only in the `Authorization` header and never appear in errors:
//! whatever a server says about an error goes through [`scrub::scrub`]
//! before it reaches a log, a health report or a client.

pub mod ollama;
pub mod openai;
pub mod ray;
pub mod scrub;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use mongars_core::domain::{FinishReason, GenerationEvent, GenerationUsage};
use mongars_core::ports::LlmError;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Longest line accepted in a streamed body; longer means malformed.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Longest error body read for its message.
const MAX_ERROR_BODY: usize = 4096;

/// Where and how to reach a remote backend.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Name in settings, used in metrics and health.
    pub name: String,
    pub urls: Vec<String>,
    pub model: String,
    /// Bearer token, when the server wants one.
    pub api_key: Option<String>,
    pub context_tokens: usize,
    pub connect_timeout: Duration,
    /// Trust for `https://` URLs.
    pub tls: mongars_net::Tls,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("name", &self.name)
            .field("urls", &self.urls)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

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
pub(crate) fn transport(e: reqwest::Error) -> LlmError {
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

/// Read a whole (non-streamed) JSON body of at most `limit` bytes.
pub(crate) async fn read_json(
    resp: reqwest::Response,
    limit: usize,
) -> Result<serde_json::Value, LlmError> {
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
    serde_json::from_slice(&body).map_err(|e| LlmError::Malformed(format!("bad JSON: {e}")))
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

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Splits a streamed body into lines (without `\r\n`), refusing lines over
/// [`MAX_LINE_BYTES`] and invalid UTF-8. A last line without a newline is
/// still returned.
pub(crate) struct Lines {
    body: ByteStream,
    buf: Vec<u8>,
    done: bool,
}

impl Lines {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            body: Box::pin(resp.bytes_stream()),
            buf: Vec::new(),
            done: false,
        }
    }

    /// The next line; `Ok(None)` at the end of the body.
    pub async fn next_line(&mut self) -> Result<Option<String>, LlmError> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return to_text(line).map(Some);
            }
            if self.buf.len() > MAX_LINE_BYTES {
                return Err(LlmError::Malformed(format!(
                    "line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                let line = std::mem::take(&mut self.buf);
                return to_text(line).map(Some);
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(transport(e)),
                None => self.done = true,
            }
        }
    }
}

fn to_text(line: Vec<u8>) -> Result<String, LlmError> {
    String::from_utf8(line).map_err(|_| LlmError::Malformed("invalid UTF-8 in stream".into()))
}

/// What a streaming reader knows so far, to fill in the usage at the end.
pub(crate) struct Progress {
    pub started: Instant,
    pub first_token: Option<Duration>,
    pub deltas: u32,
}

impl Progress {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            first_token: None,
            deltas: 0,
        }
    }

    /// Send one piece of text; `false` when the consumer went away.
    pub async fn send(&mut self, tx: &Sender, text: String) -> bool {
        if text.is_empty() {
            return true;
        }
        self.first_token
            .get_or_insert_with(|| self.started.elapsed());
        self.deltas += 1;
        tx.send(Ok(GenerationEvent::Delta(text))).await.is_ok()
    }

    pub fn usage(
        &self,
        model: &str,
        prompt_tokens: u32,
        completion_tokens: Option<u32>,
        finish_reason: FinishReason,
    ) -> GenerationUsage {
        let total = self.started.elapsed();
        GenerationUsage {
            model: model.to_string(),
            prompt_tokens,
            completion_tokens: completion_tokens.unwrap_or(self.deltas),
            finish_reason,
            mean_logprob: None,
            time_to_first_token: self.first_token.unwrap_or(total),
            queued: Duration::ZERO,
            total,
        }
    }
}

pub(crate) type Sender = tokio::sync::mpsc::Sender<Result<GenerationEvent, LlmError>>;

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
