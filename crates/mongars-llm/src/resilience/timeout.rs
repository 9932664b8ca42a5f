//! First-token and total time limits, and the "primed stream" guarantee:
//! `generate` succeeds only once a first event has arrived.

use super::Decorator;
use async_trait::async_trait;
use mongars_core::domain::{GenerationEvent, GenerationRequest};
use mongars_core::ports::{GenerationStream, LlmBackend, LlmError};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the call to the first event (connect, queue, prompt processing).
    pub first_token: Duration,
    /// From the call to the end of the reply.
    pub total: Duration,
}

impl Timeouts {
    /// Limits so large they never apply (the embedded engine has its own
    /// queue and never stalls on a network).
    pub fn unlimited() -> Self {
        let far = Duration::from_secs(365 * 24 * 3600);
        Self {
            first_token: far,
            total: far,
        }
    }
}

pub struct TimeoutBackend {
    inner: Arc<dyn LlmBackend>,
    limits: Timeouts,
}

impl TimeoutBackend {
    pub fn new(inner: Arc<dyn LlmBackend>, limits: Timeouts) -> Self {
        Self { inner, limits }
    }
}

#[async_trait]
impl Decorator for TimeoutBackend {
    fn inner(&self) -> &Arc<dyn LlmBackend> {
        &self.inner
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let start = Instant::now();
        let first_deadline = start + self.limits.first_token;
        let total_deadline = start + self.limits.total;
        let primed = async {
            let mut stream = self.inner.generate(request).await?;
            let first = stream.recv().await;
            Ok::<_, LlmError>((stream, first))
        };
        let (mut stream, first) = match tokio::time::timeout_at(first_deadline, primed).await {
            Err(_) => {
                return Err(LlmError::Timeout(format!(
                    "no first token within {} ms",
                    self.limits.first_token.as_millis()
                )));
            }
            Ok(result) => result?,
        };
        let first = match first {
            None => {
                return Err(LlmError::Malformed("stream closed before any event".into()));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(event)) => event,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let total_ms = self.limits.total.as_millis();
        tokio::spawn(async move {
            let finished = matches!(first, GenerationEvent::Done(_));
            if tx.send(Ok(first)).await.is_err() || finished {
                return;
            }
            loop {
                tokio::select! {
                    event = stream.recv() => {
                        let Some(event) = event else { return };
                        let finished = !matches!(event, Ok(GenerationEvent::Delta(_)));
                        if tx.send(event).await.is_err() || finished {
                            return;
                        }
                    }
                    _ = tokio::time::sleep_until(total_deadline) => {
                        let e = LlmError::Timeout(format!("reply took longer than {total_ms} ms"));
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(rx)
    }
}
