//! Metrics per backend (requests by outcome, tokens, time to first token,
//! duration, errors by kind) and the last latency and error kind, which
//! `/llm/health` reports.

use super::Decorator;
use async_trait::async_trait;
use mongars_core::domain::{GenerationEvent, GenerationRequest};
use mongars_core::ports::{GenerationStream, LlmBackend, LlmError};
use mongars_metrics::LlmMetrics;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsSnapshot {
    /// Time to first token of the last successful request, in ms.
    pub last_latency_ms: Option<f64>,
    /// Kind of the last failure (`timeout`, `transport`, ...), if any.
    pub last_error: Option<String>,
    /// When it happened (RFC 3339).
    pub last_error_at: Option<String>,
    pub requests: u64,
    pub failures: u64,
}

#[derive(Default)]
pub struct BackendStats(Mutex<StatsSnapshot>);

impl BackendStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut StatsSnapshot)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }

    fn failed(&self, e: &LlmError) {
        self.update(|s| {
            s.failures += 1;
            s.last_error = Some(e.kind().to_string());
            s.last_error_at = Some(chrono_now());
        });
    }
}

fn chrono_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

pub struct MeteredBackend {
    inner: Arc<dyn LlmBackend>,
    metrics: LlmMetrics,
    stats: Arc<BackendStats>,
}

impl MeteredBackend {
    pub fn new(inner: Arc<dyn LlmBackend>, metrics: LlmMetrics, stats: Arc<BackendStats>) -> Self {
        Self {
            inner,
            metrics,
            stats,
        }
    }
}

#[async_trait]
impl Decorator for MeteredBackend {
    fn inner(&self) -> &Arc<dyn LlmBackend> {
        &self.inner
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let started = Instant::now();
        let role = request.role.as_str();
        let backend = self.inner.name().to_string();
        let m = self.metrics.clone();
        self.stats.update(|s| s.requests += 1);
        let mut stream = match self.inner.generate(request).await {
            Ok(s) => s,
            Err(e) => {
                m.requests
                    .with_label_values(&[&backend, role, e.kind()])
                    .inc();
                m.errors.with_label_values(&[&backend, e.kind()]).inc();
                if e.is_backend_fault() {
                    self.stats.failed(&e);
                }
                return Err(e);
            }
        };
        let ttft = started.elapsed();
        m.time_to_first_token
            .with_label_values(&[&backend])
            .observe(ttft.as_secs_f64());
        self.stats
            .update(|s| s.last_latency_ms = Some(ttft.as_secs_f64() * 1000.0));
        let stats = self.stats.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(event) = stream.recv().await {
                match &event {
                    Ok(GenerationEvent::Done(u)) => {
                        m.requests.with_label_values(&[&backend, role, "ok"]).inc();
                        m.tokens
                            .with_label_values(&[&backend, "prompt"])
                            .inc_by(u64::from(u.prompt_tokens));
                        m.tokens
                            .with_label_values(&[&backend, "completion"])
                            .inc_by(u64::from(u.completion_tokens));
                        m.duration
                            .with_label_values(&[&backend])
                            .observe(started.elapsed().as_secs_f64());
                    }
                    Err(e) => {
                        m.requests
                            .with_label_values(&[&backend, role, e.kind()])
                            .inc();
                        m.errors.with_label_values(&[&backend, e.kind()]).inc();
                        stats.failed(e);
                    }
                    Ok(GenerationEvent::Delta(_)) => {}
                }
                if tx.send(event).await.is_err() {
                    m.requests
                        .with_label_values(&[&backend, role, "cancelled"])
                        .inc();
                    return;
                }
            }
        });
        Ok(rx)
    }
}
