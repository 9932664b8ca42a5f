//! Ray Serve over HTTP, with its own rotation and retries across replicas.
//!
//! Request: `POST <endpoint>` with
//! `{"prompt": str, "messages": [{role, content}], "max_new_tokens": int,
//!   "context": {"temperature", "top_p", "stop", "seed", "model"}, "stream": bool}`.
//! `prompt` is the conversation as plain `role: text` lines ending with
//! `assistant:`, for deployments that take raw text; `messages` is the same
//! conversation for deployments that apply a chat template.
//!
//! Answer, when `stream` is false: a JSON object with the reply in `text`
//! (or `generated_text`, or `response`) and optionally
//! `usage: {prompt_tokens, completion_tokens}` and `finish_reason`.
//! When `stream` is true: NDJSON lines `{"delta": str}` (or `{"text": str}`),
//! then `{"done": true, "usage": {...}, "finish_reason": ...}`; a line
//! `{"error": str}` fails the reply.
//!
//! Endpoints are tried round robin, starting after the last one that
//! answered. 503, 409 and 429 mean the deployment is scaling: that endpoint
//! is left alone for `Retry-After` seconds, or 0.5, 1, 2, 4 s without one;
//! a wait that would end after the request's first-token budget is not
//! waited out (`Busy`), so the router tries the next backend at once.
//! Other 5xx and connection errors back off exponentially with jitter. Other
//! 4xx fail at once. At most `endpoints x scale_cycles` attempts.

use super::wire::{retry_after, status_error, transport};
use super::{Conn, Ending, Framing, Protocol, Reader, RemoteBackend, RemoteConfig};
use crate::resilience::Backoff;
use async_trait::async_trait;
use mongars_core::domain::GenerationRequest;
use mongars_core::ports::LlmError;
use mongars_metrics::RayMetrics;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Waits after a scaling answer without `Retry-After`.
const SCALING_BACKOFF_MS: [u64; 4] = [500, 1000, 2000, 4000];

/// A Ray Serve backend.
pub type RayBackend = RemoteBackend<Ray>;

#[derive(Debug, Clone, Copy)]
pub struct RayOptions {
    pub stream: bool,
    pub scale_cycles: u32,
    /// Between attempts after a 5xx other than scaling, or a transport error.
    pub backoff: Backoff,
    /// Longest the attempts of one request may wait in all (the first-token
    /// limit): a `Retry-After` that would end later is not waited out, so
    /// the router can try the next backend at once.
    pub budget: Duration,
}

/// The Ray Serve protocol, with its rotation across endpoints.
pub struct Ray {
    opts: RayOptions,
    metrics: RayMetrics,
    /// Index of the endpoint that answered last (`usize::MAX`: none yet).
    last_ok: AtomicUsize,
    /// Per endpoint: not to be tried before this instant (Retry-After).
    cooling: Mutex<Vec<Option<Instant>>>,
}

enum Attempt {
    Answer(reqwest::Response),
    /// 503 or 409 (deployment scaling) or 429, with `Retry-After` if sent.
    Scaling(u16, Option<Duration>),
    Retry(LlmError),
    Fail(LlmError),
}

impl Ray {
    pub fn new(opts: RayOptions, metrics: RayMetrics) -> Self {
        Self {
            opts,
            metrics,
            last_ok: AtomicUsize::new(usize::MAX),
            cooling: Mutex::new(Vec::new()),
        }
    }

    fn prompt(request: &GenerationRequest) -> String {
        let mut prompt = String::new();
        for m in &request.messages {
            prompt.push_str(m.role.as_str());
            prompt.push_str(": ");
            prompt.push_str(&m.content);
            prompt.push('\n');
        }
        prompt.push_str("assistant:");
        prompt
    }

    async fn attempt(&self, conn: &Conn, index: usize, body: &Value) -> Attempt {
        let url = &conn.cfg().urls[index];
        self.metrics.requests.inc();
        let sent = Instant::now();
        let result = conn
            .request(reqwest::Method::POST, url)
            .json(body)
            .send()
            .await;
        self.metrics
            .latency
            .with_label_values(&[&index.to_string()])
            .observe(sent.elapsed().as_secs_f64());
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.metrics
                    .failures
                    .with_label_values(&["transport"])
                    .inc();
                return Attempt::Retry(transport(e));
            }
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => Attempt::Answer(resp),
            503 | 409 | 429 => {
                self.metrics.scaling_events.inc();
                self.metrics.failures.with_label_values(&["scaling"]).inc();
                Attempt::Scaling(status, retry_after(resp.headers()))
            }
            500..=599 => {
                self.metrics
                    .failures
                    .with_label_values(&["server_error"])
                    .inc();
                Attempt::Retry(status_error(resp, conn.cfg()).await)
            }
            _ => {
                self.metrics.failures.with_label_values(&["rejected"]).inc();
                Attempt::Fail(status_error(resp, conn.cfg()).await)
            }
        }
    }

    fn wait_until(&self, index: usize) -> Option<Instant> {
        self.cooling.lock().ok()?.get(index).copied().flatten()
    }

    fn cool(&self, index: usize, until: Instant) {
        if let Ok(mut c) = self.cooling.lock() {
            if c.len() <= index {
                c.resize(index + 1, None);
            }
            c[index] = Some(until);
        }
    }

    /// The first endpoint that answers 2xx, after rotation and retries.
    async fn rotate(&self, conn: &Conn, body: &Value) -> Result<reqwest::Response, LlmError> {
        let n = conn.cfg().urls.len();
        let attempts = n * self.opts.scale_cycles as usize;
        let start = self.last_ok.load(Ordering::Relaxed).wrapping_add(1) % n;
        let mut scaling = 0usize;
        let mut retries = 0u32;
        let mut last = LlmError::Unavailable("no attempt made".into());
        let deadline = Instant::now() + self.opts.budget;
        for k in 0..attempts {
            let index = (start + k) % n;
            if let Some(until) = self.wait_until(index) {
                if until > deadline {
                    let after_ms = until.saturating_duration_since(Instant::now()).as_millis();
                    last = LlmError::Busy {
                        status: 503,
                        after_ms: after_ms as u64,
                    };
                    continue;
                }
                tokio::time::sleep_until(until.into()).await;
            }
            match self.attempt(conn, index, body).await {
                Attempt::Answer(resp) => {
                    self.last_ok.store(index, Ordering::Relaxed);
                    return Ok(resp);
                }
                Attempt::Fail(e) => return Err(e),
                Attempt::Scaling(status, wait) => {
                    let wait = wait.unwrap_or_else(|| {
                        Duration::from_millis(SCALING_BACKOFF_MS[scaling.min(3)])
                    });
                    if Instant::now() + wait > deadline {
                        tracing::debug!(
                            endpoint = index,
                            wait_ms = wait.as_millis() as u64,
                            "ray asks for a wait longer than the request allows"
                        );
                        self.cool(index, Instant::now() + wait);
                        last = LlmError::Busy {
                            status,
                            after_ms: wait.as_millis() as u64,
                        };
                        continue;
                    }
                    scaling += 1;
                    tracing::debug!(
                        endpoint = index,
                        wait_ms = wait.as_millis() as u64,
                        "ray deployment scaling"
                    );
                    self.cool(index, Instant::now() + wait);
                    last = LlmError::Unavailable(format!("endpoint {index} is scaling"));
                }
                Attempt::Retry(e) => {
                    tracing::debug!(endpoint = index, error = %e, "ray attempt failed");
                    last = e;
                    if k + 1 < attempts {
                        tokio::time::sleep(self.opts.backoff.delay(retries)).await;
                        retries += 1;
                    }
                }
            }
        }
        Err(match last {
            LlmError::Timeout(m) => LlmError::Timeout(m),
            e @ LlmError::Busy { .. } => e,
            e => LlmError::Unavailable(format!("ray: {attempts} attempts failed, last: {e}")),
        })
    }
}

#[async_trait]
impl Protocol for Ray {
    type Reader = RayReader;
    const KIND: &'static str = "ray";

    fn check_urls(urls: &[String]) -> Result<(), LlmError> {
        if urls.is_empty() {
            Err(LlmError::Unavailable("ray needs at least one url".into()))
        } else {
            Ok(())
        }
    }

    fn body(&self, cfg: &RemoteConfig, request: &GenerationRequest) -> Value {
        let s = &request.sampling;
        json!({
            "prompt": Self::prompt(request),
            "messages": request.messages,
            "max_new_tokens": s.max_tokens,
            "context": {
                "temperature": s.temperature,
                "top_p": s.top_p,
                "stop": s.stop,
                "seed": s.seed,
                "model": cfg.model,
            },
            "stream": self.opts.stream,
        })
    }

    async fn send(&self, conn: &Conn, body: &Value) -> Result<reqwest::Response, LlmError> {
        self.rotate(conn, body).await
    }

    fn framing(&self) -> Framing {
        if self.opts.stream {
            Framing::Lines(&["json"])
        } else {
            Framing::Whole
        }
    }

    fn reader(&self) -> RayReader {
        RayReader {
            stream: self.opts.stream,
        }
    }

    async fn health(&self, conn: &Conn) -> Result<String, String> {
        let mut details = Vec::new();
        let mut healthy = false;
        for (i, url) in conn.cfg().urls.iter().enumerate() {
            let root = url
                .find("://")
                .and_then(|s| url[s + 3..].find('/').map(|p| &url[..s + 3 + p]))
                .unwrap_or(url);
            let probe = conn
                .request(reqwest::Method::GET, &format!("{root}/-/healthz"))
                .timeout(Duration::from_secs(3))
                .send()
                .await;
            match probe {
                Ok(r) if r.status().is_success() => {
                    healthy = true;
                    details.push(format!("endpoint {i} up"));
                }
                Ok(r) => details.push(format!("endpoint {i}: status {}", r.status().as_u16())),
                Err(e) => details.push(format!("endpoint {i}: {}", transport(e))),
            }
        }
        let detail = details.join("; ");
        if healthy { Ok(detail) } else { Err(detail) }
    }

    fn failed(&self, error: &LlmError) {
        self.metrics
            .failures
            .with_label_values(&[error.kind()])
            .inc();
    }
}

/// Reads a whole answer (`{"text"}`), or NDJSON lines (`{"delta"}` ...
/// `{"done": true}`) when streaming.
pub struct RayReader {
    stream: bool,
}

impl RayReader {
    /// A reader of NDJSON lines (`stream`) or of one whole answer.
    pub fn new(stream: bool) -> Self {
        Self { stream }
    }
}

impl Reader for RayReader {
    fn read(&mut self, line: &str, text: &mut Vec<String>) -> Result<Option<Ending>, LlmError> {
        let value: Value = serde_json::from_str(line).map_err(|e| {
            let what = if self.stream { "stream line" } else { "JSON" };
            LlmError::Malformed(format!("bad {what}: {e}"))
        })?;
        if let Some(e) = value.get("error") {
            return Err(LlmError::Failed(
                e.as_str().map_or_else(|| e.to_string(), str::to_string),
            ));
        }
        if !self.stream {
            let whole = ["text", "generated_text", "response"]
                .iter()
                .find_map(|k| value.get(*k)?.as_str())
                .ok_or_else(|| {
                    LlmError::Malformed("answer has no text, generated_text or response".into())
                })?;
            text.push(whole.to_string());
            return Ok(Some(ending(&value)));
        }
        text.extend(
            ["delta", "text"]
                .iter()
                .find_map(|k| value.get(*k)?.as_str())
                .map(str::to_string),
        );
        Ok((value.get("done").and_then(Value::as_bool) == Some(true)).then(|| ending(&value)))
    }
}

fn ending(value: &Value) -> Ending {
    let usage = value.get("usage");
    let count = |k: &str| {
        usage
            .and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
    };
    Ending {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
        finish_reason: value
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string),
        model: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_answers_take_the_first_text_key_and_the_usage() {
        let mut r = RayReader { stream: false };
        let mut text = Vec::new();
        let body = r#"{"generated_text":"Paris","usage":{"prompt_tokens":5,"completion_tokens":1},"finish_reason":"stop"}"#;
        let end = r.read(body, &mut text).unwrap().unwrap();
        assert_eq!(text, ["Paris"]);
        assert_eq!(
            (end.prompt_tokens, end.completion_tokens),
            (Some(5), Some(1))
        );
        let e = r.read(r#"{"answer":"?"}"#, &mut text).unwrap_err();
        assert!(matches!(e, LlmError::Malformed(_)));
    }

    #[test]
    fn streamed_lines_end_at_done_and_errors_fail() {
        let mut r = RayReader { stream: true };
        let mut text = Vec::new();
        assert!(r.read(r#"{"delta":"Pa"}"#, &mut text).unwrap().is_none());
        assert!(r.read(r#"{"text":"ris"}"#, &mut text).unwrap().is_none());
        assert!(r.read(r#"{"done":true}"#, &mut text).unwrap().is_some());
        assert_eq!(text, ["Pa", "ris"]);
        let e = r.read(r#"{"error":"boom"}"#, &mut text).unwrap_err();
        assert!(matches!(e, LlmError::Failed(m) if m == "boom"));
    }
}
