//! A decorator on the node's own engine that counts what it generates:
//! tasks done and failed, and tokens over the last minute, for the load
//! report and the telemetry of the peer API.

use async_trait::async_trait;
use mongars_core::domain::{GenerationEvent, GenerationRequest};
use mongars_core::ports::{Clock, GenerationStream, LlmBackend, LlmError};
use mongars_llm::resilience::{Decorated, Decorator};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window tokens per second are averaged over.
const WINDOW: Duration = Duration::from_secs(60);

pub struct Tally {
    processed: AtomicU64,
    failed: AtomicU64,
    tokens: Mutex<VecDeque<(Instant, u32)>>,
    clock: Arc<dyn Clock>,
}

impl Tally {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            processed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            tokens: Mutex::new(VecDeque::new()),
            clock,
        })
    }

    pub fn processed(&self) -> u64 {
        self.processed.load(Ordering::Relaxed)
    }

    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn finished(&self, tokens: u32) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.instant();
        let mut q = self.tokens.lock().expect("tally");
        q.push_back((now, tokens));
        while q
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            q.pop_front();
        }
    }

    fn failure(&self) {
        self.processed.fetch_add(1, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Generated tokens per second over the last minute.
    pub fn tokens_per_second(&self) -> f64 {
        let now = self.clock.instant();
        let q = self.tokens.lock().expect("tally");
        let sum: u64 = q
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= WINDOW)
            .map(|(_, n)| u64::from(*n))
            .sum();
        sum as f64 / WINDOW.as_secs_f64()
    }

    /// `inner`, counted by this tally.
    pub fn wrap(self: &Arc<Self>, inner: Arc<dyn LlmBackend>) -> Arc<dyn LlmBackend> {
        Arc::new(Decorated(Counted {
            inner,
            tally: self.clone(),
        }))
    }
}

struct Counted {
    inner: Arc<dyn LlmBackend>,
    tally: Arc<Tally>,
}

#[async_trait]
impl Decorator for Counted {
    fn inner(&self) -> &Arc<dyn LlmBackend> {
        &self.inner
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let mut stream = match self.inner.generate(request).await {
            Ok(s) => s,
            Err(e) => {
                self.tally.failure();
                return Err(e);
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let tally = self.tally.clone();
        tokio::spawn(async move {
            let mut ended = false;
            while let Some(event) = stream.recv().await {
                match &event {
                    Ok(GenerationEvent::Done(u)) => {
                        tally.finished(u.completion_tokens);
                        ended = true;
                    }
                    Err(_) => {
                        tally.failure();
                        ended = true;
                    }
                    Ok(GenerationEvent::Delta(_)) => {}
                }
                if tx.send(event).await.is_err() {
                    break;
                }
            }
            if !ended {
                tally.failure();
            }
        });
        Ok(rx)
    }
}
