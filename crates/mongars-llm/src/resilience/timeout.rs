//! First-token, inter-token and total time limits, and the "primed stream"
//! guarantee: `generate` succeeds only once a first event has arrived.
//!
//! The inter-token limit matters to streaming clients: a backend that stops
//! sending mid-reply would otherwise hold the reply (and the client, whose
//! timers keep-alive comments reset) until the total limit.

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
    /// Longest gap between two events after the first.
    pub between_tokens: Duration,
    /// From the call to the end of the reply.
    pub total: Duration,
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
        let limits = self.limits;
        tokio::spawn(async move {
            let finished = matches!(first, GenerationEvent::Done(_));
            if tx.send(Ok(first)).await.is_err() || finished {
                return;
            }
            let stall = tokio::time::sleep(limits.between_tokens);
            tokio::pin!(stall);
            loop {
                tokio::select! {
                    event = stream.recv() => {
                        let Some(event) = event else { return };
                        let finished = !matches!(event, Ok(GenerationEvent::Delta(_)));
                        if tx.send(event).await.is_err() || finished {
                            return;
                        }
                        stall.as_mut().reset(Instant::now() + limits.between_tokens);
                    }
                    _ = &mut stall => {
                        let ms = limits.between_tokens.as_millis();
                        let e = LlmError::Timeout(format!("no token for {ms} ms"));
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    _ = tokio::time::sleep_until(total_deadline) => {
                        let ms = limits.total.as_millis();
                        let e = LlmError::Timeout(format!("reply took longer than {ms} ms"));
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
