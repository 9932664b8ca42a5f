//! Inference backends behind the core's `LlmBackend` port.
//!
//! - [`embedded`]: GGUF models run in-process by llama.cpp (the default).
//! - [`remote`]: Ollama, OpenAI-compatible servers and Ray Serve over HTTP.
//! - [`resilience`]: timeout, retry, circuit breaker and metrics decorators.
//! - [`router`]: failover across the backends of each model role, and the
//!   response cache.
//! - `scripted` (feature `testing`): a backend that plays a script, for tests
//!   of the pipeline (failures before or after the first token, slow streams).

pub mod embedded;
pub mod remote;
pub mod resilience;
pub mod router;
#[cfg(feature = "testing")]
pub mod scripted;
pub mod text;

use async_trait::async_trait;
use mongars_core::ports::{HealthCheck, LlmBackend};
use std::sync::Arc;

/// `/ready` check: the generation backend can serve.
pub struct LlmReadiness(pub Arc<dyn LlmBackend>);

#[async_trait]
impl HealthCheck for LlmReadiness {
    fn name(&self) -> &'static str {
        "llm"
    }

    async fn check(&self) -> Result<(), String> {
        let h = self.0.health().await;
        if h.healthy { Ok(()) } else { Err(h.detail) }
    }
}
