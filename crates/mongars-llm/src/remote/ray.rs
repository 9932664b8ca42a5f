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

use super::{Lines, Progress, RemoteConfig, Sender, client, finish_reason, status_error};
use super::{expect_content_type, read_json, retry_after, scrubbed, transport, with_auth};
use crate::resilience::Backoff;
use async_trait::async_trait;
use mongars_core::domain::{ChatMessage, GenerationEvent, GenerationRequest};
use mongars_core::ports::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, estimate_prompt_tokens,
};
use mongars_metrics::RayMetrics;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Waits after a scaling answer without `Retry-After`.
const SCALING_BACKOFF_MS: [u64; 4] = [500, 1000, 2000, 4000];

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

pub struct RayBackend {
    cfg: RemoteConfig,
    opts: RayOptions,
    http: reqwest::Client,
    metrics: RayMetrics,
    /// Index of the endpoint that answered last.
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

impl RayBackend {
    pub fn new(cfg: RemoteConfig, opts: RayOptions, metrics: RayMetrics) -> Result<Self, LlmError> {
        if cfg.urls.is_empty() {
            return Err(LlmError::Unavailable("ray needs at least one url".into()));
        }
        let n = cfg.urls.len();
        Ok(Self {
            http: client(&cfg)?,
            last_ok: AtomicUsize::new(n - 1),
            cooling: Mutex::new(vec![None; n]),
            cfg,
            opts,
            metrics,
        })
    }

    fn body(&self, request: &GenerationRequest) -> Value {
        let mut prompt = String::new();
        for m in &request.messages {
            prompt.push_str(m.role.as_str());
            prompt.push_str(": ");
            prompt.push_str(&m.content);
            prompt.push('\n');
        }
        prompt.push_str("assistant:");
        let s = &request.sampling;
        json!({
            "prompt": prompt,
            "messages": request.messages,
            "max_new_tokens": s.max_tokens,
            "context": {
                "temperature": s.temperature,
                "top_p": s.top_p,
                "stop": s.stop,
                "seed": s.seed,
                "model": self.cfg.model,
            },
            "stream": self.opts.stream,
        })
    }

    async fn attempt(&self, index: usize, body: &Value) -> Attempt {
        let url = &self.cfg.urls[index];
        self.metrics.requests.inc();
        let sent = Instant::now();
        let result = with_auth(self.http.post(url), &self.cfg)
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
                Attempt::Retry(status_error(resp, &self.cfg).await)
            }
            _ => {
                self.metrics.failures.with_label_values(&["rejected"]).inc();
                Attempt::Fail(status_error(resp, &self.cfg).await)
            }
        }
    }

    fn wait_until(&self, index: usize) -> Option<Instant> {
        self.cooling.lock().ok()?.get(index).copied().flatten()
    }

    fn cool(&self, index: usize, until: Instant) {
        if let Ok(mut c) = self.cooling.lock() {
            c[index] = Some(until);
        }
    }

    /// The first endpoint that answers 2xx, after rotation and retries.
    async fn send(&self, body: &Value) -> Result<(usize, reqwest::Response), LlmError> {
        let n = self.cfg.urls.len();
        let attempts = n * self.opts.scale_cycles as usize;
        let start = (self.last_ok.load(Ordering::Relaxed) + 1) % n;
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
            match self.attempt(index, body).await {
                Attempt::Answer(resp) => {
                    self.last_ok.store(index, Ordering::Relaxed);
                    return Ok((index, resp));
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
impl LlmBackend for RayBackend {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn context_window(&self) -> usize {
        self.cfg.context_tokens
    }

    async fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, LlmError> {
        Ok(estimate_prompt_tokens(messages))
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let started = Instant::now();
        let prompt_estimate = estimate_prompt_tokens(&request.messages) as u32;
        let body = self.body(&request);
        let (_, resp) = self.send(&body).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let model = self.cfg.model.clone();
        let failures = self.metrics.failures.clone();
        let key = self.cfg.api_key.clone();
        if self.opts.stream {
            expect_content_type(&resp, &["json"])?;
            tokio::spawn(async move {
                let mut p = Progress::new(started);
                if let Err(e) =
                    read_stream(Lines::new(resp), &tx, &mut p, &model, prompt_estimate).await
                {
                    failures.with_label_values(&[e.kind()]).inc();
                    let _ = tx.send(Err(scrubbed(e, key.as_deref()))).await;
                }
            });
        } else {
            let value = read_json(resp, 16 << 20)
                .await
                .inspect_err(|e| {
                    failures.with_label_values(&[e.kind()]).inc();
                })
                .map_err(|e| scrubbed(e, key.as_deref()))?;
            let text = ["text", "generated_text", "response"]
                .iter()
                .find_map(|k| value.get(*k)?.as_str())
                .ok_or_else(|| {
                    failures.with_label_values(&["malformed"]).inc();
                    LlmError::Malformed("answer has no text, generated_text or response".into())
                })?
                .to_string();
            tokio::spawn(async move {
                let mut p = Progress::new(started);
                if p.send(&tx, text).await {
                    let done = done_usage(&p, &value, &model, prompt_estimate);
                    let _ = tx.send(Ok(GenerationEvent::Done(done))).await;
                }
            });
        }
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        let mut details = Vec::new();
        let mut healthy = false;
        for (i, url) in self.cfg.urls.iter().enumerate() {
            let root = url
                .find("://")
                .and_then(|s| url[s + 3..].find('/').map(|p| &url[..s + 3 + p]))
                .unwrap_or(url);
            let probe = with_auth(self.http.get(format!("{root}/-/healthz")), &self.cfg)
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
        BackendHealth {
            healthy,
            detail: details.join("; "),
            active: 0,
            queued: 0,
        }
    }
}

fn done_usage(
    p: &Progress,
    value: &Value,
    model: &str,
    prompt_estimate: u32,
) -> mongars_core::domain::GenerationUsage {
    let usage = value.get("usage");
    let count = |k: &str| {
        usage
            .and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .map(|n| n.min(u64::from(u32::MAX)) as u32)
    };
    p.usage(
        model,
        count("prompt_tokens").unwrap_or(prompt_estimate),
        count("completion_tokens"),
        finish_reason(value.get("finish_reason").and_then(Value::as_str)),
    )
}

async fn read_stream(
    mut lines: Lines,
    tx: &Sender,
    p: &mut Progress,
    model: &str,
    prompt_estimate: u32,
) -> Result<(), LlmError> {
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tx.closed() => return Ok(()),
        };
        let Some(line) = line else {
            return Err(LlmError::Malformed("stream ended before done".into()));
        };
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| LlmError::Malformed(format!("bad stream line: {e}")))?;
        if let Some(e) = value.get("error") {
            return Err(LlmError::Failed(
                e.as_str().map_or_else(|| e.to_string(), str::to_string),
            ));
        }
        let text = ["delta", "text"]
            .iter()
            .find_map(|k| value.get(*k)?.as_str())
            .unwrap_or_default()
            .to_string();
        if !p.send(tx, text).await {
            return Ok(());
        }
        if value.get("done").and_then(Value::as_bool) == Some(true) {
            let done = done_usage(p, &value, model, prompt_estimate);
            let _ = tx.send(Ok(GenerationEvent::Done(done))).await;
            return Ok(());
        }
    }
}
