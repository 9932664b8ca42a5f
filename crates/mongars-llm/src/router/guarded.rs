//! One backend wrapped in its decorators, with what the router and
//! `/llm/health` need to see of it.

use crate::resilience::{
    BackendStats, Backoff, Breaker, BreakerBackend, BreakerPolicy, Decorated, MeteredBackend,
    RetryBackend, TimeoutBackend, Timeouts,
};
use mongars_core::ports::{BackendHealth, Clock, LlmBackend};
use mongars_metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a health answer is reused, so `/ready` and `/llm/health` do not
/// call every remote backend on every request.
const HEALTH_TTL: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy)]
pub struct Guards {
    pub timeouts: Timeouts,
    pub retries: u32,
    pub backoff: Backoff,
    pub breaker: BreakerPolicy,
}

pub struct GuardedBackend {
    /// Unique among the router's backends; the `backend` metrics label.
    pub name: String,
    pub kind: String,
    /// The full decorator stack.
    pub backend: Arc<dyn LlmBackend>,
    pub breaker: Arc<Breaker>,
    pub stats: Arc<BackendStats>,
    health: tokio::sync::Mutex<Option<(Instant, BackendHealth)>>,
    raw: Arc<dyn LlmBackend>,
}

impl GuardedBackend {
    /// Wrap `raw` (whose `name()` is the metrics label): timeout, retry,
    /// breaker, metrics.
    pub fn new(
        raw: Arc<dyn LlmBackend>,
        kind: &str,
        guards: Guards,
        metrics: &Metrics,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let name = raw.name().to_string();
        let breaker = Breaker::new(&name, guards.breaker, metrics.llm.clone(), clock);
        let stats = Arc::new(BackendStats::default());
        let timed: Arc<dyn LlmBackend> =
            Arc::new(Decorated(TimeoutBackend::new(raw.clone(), guards.timeouts)));
        let retried: Arc<dyn LlmBackend> = Arc::new(Decorated(RetryBackend::new(
            timed,
            guards.retries,
            guards.backoff,
            metrics.llm.retries.with_label_values(&[&name]),
            guards.timeouts.first_token,
        )));
        let guarded: Arc<dyn LlmBackend> =
            Arc::new(Decorated(BreakerBackend::new(retried, breaker.clone())));
        let metered: Arc<dyn LlmBackend> = Arc::new(Decorated(MeteredBackend::new(
            guarded,
            metrics.llm.clone(),
            stats.clone(),
        )));
        Arc::new(Self {
            name,
            kind: kind.to_string(),
            backend: metered,
            breaker,
            stats,
            health: tokio::sync::Mutex::new(None),
            raw,
        })
    }

    /// The backend's health. Remote answers are reused for a few seconds;
    /// the embedded engine's (live queue figures) never.
    pub async fn health(&self) -> BackendHealth {
        if self.kind == "embedded" {
            return self.raw.health().await;
        }
        let mut cached = self.health.lock().await;
        if let Some((at, h)) = cached.as_ref()
            && at.elapsed() < HEALTH_TTL
        {
            return h.clone();
        }
        let h = self.raw.health().await;
        *cached = Some((Instant::now(), h.clone()));
        h
    }
}
