//! The generation port. The conversation pipeline talks only to this trait;
//! the embedded llama.cpp engine implements it, and remote backends, routers
//! and decorators (breakers, retries, metrics) wrap it.

use crate::domain::{ChatMessage, GenerationEvent, GenerationRequest};
use async_trait::async_trait;
use serde::Serialize;

/// A stream of generation events. Dropping the receiver cancels the
/// generation: backends check for a closed channel between tokens.
pub type GenerationStream = tokio::sync::mpsc::Receiver<Result<GenerationEvent, LlmError>>;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// Every worker is busy and the queue is full.
    #[error("generation queue is full")]
    Overloaded { retry_after_secs: u64 },
    /// The prompt alone does not fit the context window.
    #[error("prompt of {tokens} tokens exceeds the limit of {limit}")]
    PromptTooLong { tokens: usize, limit: usize },
    /// The backend cannot serve now (model missing, engine stopped).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend failed while generating.
    #[error("generation failed: {0}")]
    Failed(String),
}

/// A backend's own view of its health.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendHealth {
    pub healthy: bool,
    pub detail: String,
    /// Requests generating now.
    pub active: usize,
    /// Requests waiting for a worker.
    pub queued: usize,
}

#[async_trait]
pub trait LlmBackend: Send + Sync {
    /// Short backend name, e.g. `embedded`.
    fn name(&self) -> &str;
    /// Model identifier shown to clients.
    fn model(&self) -> &str;
    /// Tokens the model can attend to (prompt plus reply).
    fn context_window(&self) -> usize;
    /// Tokens `messages` take once formatted with the model's chat template,
    /// counted with its real tokenizer.
    async fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, LlmError>;
    /// Start generating. Errors that happen before any token (queue full,
    /// prompt too long) are returned here; later ones arrive on the stream.
    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError>;
    async fn health(&self) -> BackendHealth;
}
