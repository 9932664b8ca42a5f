//! Circuit breaker: closed -> open after `failures` consecutive failures
//! within `window` -> half-open after `cooldown`, when exactly one probe
//! request is let through -> closed if it succeeds, open again if it fails.
//! While open (or while the probe runs) requests fail at once with
//! `CircuitOpen`, so the router moves on without waiting for a dead backend.
//!
//! Only backend faults count: a full queue or a prompt that is too long
//! says nothing about the backend's health. A reply counts as a success at
//! its first token; a failure later in the stream still counts as a failure.

use super::Decorator;
use async_trait::async_trait;
use mongars_core::domain::GenerationRequest;
use mongars_core::ports::{Clock, GenerationStream, LlmBackend, LlmError};
use mongars_metrics::{BREAKER_CLOSED, BREAKER_HALF_OPEN, BREAKER_OPEN, LlmMetrics};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct BreakerPolicy {
    pub failures: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => BREAKER_CLOSED,
            BreakerState::HalfOpen => BREAKER_HALF_OPEN,
            BreakerState::Open => BREAKER_OPEN,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    pub consecutive_failures: u32,
    /// Milliseconds until an open circuit lets a probe through.
    pub retry_in_ms: Option<u64>,
}

struct Inner {
    state: BreakerState,
    failures: u32,
    first_failure: Option<Instant>,
    open_until: Option<Instant>,
    probe_in_flight: bool,
}

pub struct Breaker {
    backend: String,
    policy: BreakerPolicy,
    inner: Mutex<Inner>,
    metrics: LlmMetrics,
    clock: Arc<dyn Clock>,
}

/// The right to send one request; settles the breaker when dropped unsettled
/// (a cancelled request neither succeeds nor fails).
pub struct Permit {
    breaker: Arc<Breaker>,
    probe: bool,
    settled: bool,
}

impl Permit {
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.on_success(self.probe);
    }

    pub fn failure(mut self) {
        self.settled = true;
        self.breaker.on_failure(self.probe);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker.release_probe();
        }
    }
}

impl Breaker {
    pub fn new(
        backend: &str,
        policy: BreakerPolicy,
        metrics: LlmMetrics,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        metrics
            .breaker_state
            .with_label_values(&[backend])
            .set(BREAKER_CLOSED);
        Arc::new(Self {
            backend: backend.to_string(),
            policy,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                first_failure: None,
                open_until: None,
                probe_in_flight: false,
            }),
            metrics,
            clock,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn transition(&self, inner: &mut Inner, to: BreakerState) {
        if inner.state == to {
            return;
        }
        tracing::info!(backend = %self.backend, from = inner.state.as_str(), to = to.as_str(), "circuit breaker");
        inner.state = to;
        self.metrics
            .breaker_state
            .with_label_values(&[&self.backend])
            .set(to.gauge());
        self.metrics
            .breaker_transitions
            .with_label_values(&[&self.backend, to.as_str()])
            .inc();
    }

    /// A permit, or `CircuitOpen`.
    pub fn acquire(self: &Arc<Self>) -> Result<Permit, LlmError> {
        let mut inner = self.lock();
        let probe = match inner.state {
            BreakerState::Closed => false,
            BreakerState::Open => {
                if inner.open_until.is_some_and(|t| self.clock.instant() < t) {
                    return Err(LlmError::CircuitOpen);
                }
                self.transition(&mut inner, BreakerState::HalfOpen);
                inner.probe_in_flight = true;
                true
            }
            BreakerState::HalfOpen => {
                if inner.probe_in_flight {
                    return Err(LlmError::CircuitOpen);
                }
                inner.probe_in_flight = true;
                true
            }
        };
        Ok(Permit {
            breaker: self.clone(),
            probe,
            settled: false,
        })
    }

    fn on_success(&self, _probe: bool) {
        let mut inner = self.lock();
        inner.failures = 0;
        inner.first_failure = None;
        inner.probe_in_flight = false;
        inner.open_until = None;
        self.transition(&mut inner, BreakerState::Closed);
    }

    fn on_failure(&self, probe: bool) {
        let mut inner = self.lock();
        let now = self.clock.instant();
        if probe || inner.state == BreakerState::HalfOpen {
            inner.probe_in_flight = false;
            self.open(&mut inner, now);
            return;
        }
        if inner.state == BreakerState::Open {
            return;
        }
        let in_window = inner
            .first_failure
            .is_some_and(|t| now.duration_since(t) <= self.policy.window);
        if in_window {
            inner.failures += 1;
        } else {
            inner.failures = 1;
            inner.first_failure = Some(now);
        }
        if inner.failures >= self.policy.failures {
            self.open(&mut inner, now);
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.open_until = Some(now + self.policy.cooldown);
        self.transition(inner, BreakerState::Open);
    }

    /// A mid-stream failure after the request was counted a success.
    pub fn record_late_failure(&self) {
        self.on_failure(false);
    }

    fn release_probe(&self) {
        self.lock().probe_in_flight = false;
    }

    pub fn snapshot(&self) -> BreakerSnapshot {
        let inner = self.lock();
        let now = self.clock.instant();
        BreakerSnapshot {
            state: inner.state,
            consecutive_failures: inner.failures,
            retry_in_ms: match inner.state {
                BreakerState::Open => inner
                    .open_until
                    .map(|t| t.saturating_duration_since(now).as_millis() as u64),
                _ => None,
            },
        }
    }

    /// Whether a request would be let through now (without taking a permit).
    pub fn admits(&self) -> bool {
        let inner = self.lock();
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open => inner.open_until.is_none_or(|t| self.clock.instant() >= t),
            BreakerState::HalfOpen => !inner.probe_in_flight,
        }
    }
}

pub struct BreakerBackend {
    inner: Arc<dyn LlmBackend>,
    breaker: Arc<Breaker>,
}

impl BreakerBackend {
    pub fn new(inner: Arc<dyn LlmBackend>, breaker: Arc<Breaker>) -> Self {
        Self { inner, breaker }
    }
}

#[async_trait]
impl Decorator for BreakerBackend {
    fn inner(&self) -> &Arc<dyn LlmBackend> {
        &self.inner
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let permit = self.breaker.acquire()?;
        match self.inner.generate(request).await {
            Err(e) => {
                if e.is_backend_fault() {
                    permit.failure();
                }
                Err(e)
            }
            Ok(mut stream) => {
                permit.success();
                let (tx, rx) = tokio::sync::mpsc::channel(64);
                let breaker = self.breaker.clone();
                tokio::spawn(async move {
                    while let Some(event) = stream.recv().await {
                        if let Err(e) = &event
                            && e.is_backend_fault()
                        {
                            breaker.record_late_failure();
                        }
                        if tx.send(event).await.is_err() {
                            return;
                        }
                    }
                });
                Ok(rx)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongars_core::ports::ManualClock;
    use mongars_metrics::Metrics;

    fn breaker(failures: u32, cooldown_ms: u64) -> (Arc<Breaker>, Metrics, Arc<ManualClock>) {
        let m = Metrics::new();
        let policy = BreakerPolicy {
            failures,
            window: Duration::from_secs(60),
            cooldown: Duration::from_millis(cooldown_ms),
        };
        let clock = Arc::new(ManualClock::new());
        clock.freeze();
        (
            Breaker::new("b", policy, m.llm.clone(), clock.clone()),
            m,
            clock,
        )
    }

    #[test]
    fn opens_after_consecutive_failures_and_a_success_resets() {
        let (b, _, _) = breaker(3, 10_000);
        b.acquire().unwrap().failure();
        b.acquire().unwrap().failure();
        b.acquire().unwrap().success();
        b.acquire().unwrap().failure();
        b.acquire().unwrap().failure();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        b.acquire().unwrap().failure();
        assert_eq!(b.snapshot().state, BreakerState::Open);
        assert!(matches!(b.acquire(), Err(LlmError::CircuitOpen)));
    }

    #[test]
    fn half_open_lets_exactly_one_probe_through() {
        let (b, m, clock) = breaker(1, 30);
        b.acquire().unwrap().failure();
        assert!(b.acquire().is_err());
        clock.advance(Duration::from_millis(29));
        assert!(b.acquire().is_err(), "still cooling down");
        clock.advance(Duration::from_millis(1));
        let probe = b.acquire().expect("probe after cool-down");
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(matches!(b.acquire(), Err(LlmError::CircuitOpen)));
        probe.success();
        assert_eq!(b.snapshot().state, BreakerState::Closed);
        let text = m.render();
        assert!(
            text.contains("mongars_llm_breaker_transitions_total{backend=\"b\",to=\"open\"} 1")
        );
        assert!(
            text.contains("mongars_llm_breaker_transitions_total{backend=\"b\",to=\"closed\"} 1")
        );
        assert!(text.contains("mongars_llm_breaker_state{backend=\"b\"} 0"));
    }

    #[test]
    fn failed_probe_reopens_and_dropped_probe_frees_the_slot() {
        let (b, _, clock) = breaker(1, 20);
        b.acquire().unwrap().failure();
        clock.advance(Duration::from_millis(20));
        b.acquire().unwrap().failure();
        assert_eq!(b.snapshot().state, BreakerState::Open);
        clock.advance(Duration::from_millis(20));
        drop(b.acquire().unwrap());
        assert_eq!(b.snapshot().state, BreakerState::HalfOpen);
        assert!(b.acquire().is_ok(), "a cancelled probe frees the slot");
    }
}
