//! The generation port. The conversation pipeline talks only to this trait;
//! the embedded llama.cpp engine and the HTTP backends implement it, and the
//! router and its decorators (timeouts, retries, breakers, metrics) wrap it.

use crate::domain::{ChatMessage, GenerationEvent, GenerationRequest, GenerationUsage, ModelRole};
use crate::error::CoreError;
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
    /// The backend cannot serve now (model missing, engine stopped, 5xx).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend could not be reached or dropped the connection.
    #[error("transport error: {0}")]
    Transport(String),
    /// The TLS handshake failed: the backend's certificate is not trusted
    /// (see `tls.ca_file`) or not valid for its name.
    #[error("TLS: {0}")]
    Tls(String),
    /// No answer within the allowed time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The backend answered with something that is not its protocol: bad
    /// JSON, a wrong content type, a stream cut short.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// The backend asked to be called again later (429 or 503 with
    /// `Retry-After`): retried when the wait fits the request's time,
    /// otherwise the next backend is tried.
    #[error("busy (status {status}), retry after {after_ms} ms")]
    Busy { status: u16, after_ms: u64 },
    /// The backend refused the request (4xx other than scaling).
    #[error("rejected with status {status}: {message}")]
    Rejected { status: u16, message: String },
    /// The backend's circuit breaker is open: not even tried.
    #[error("circuit open")]
    CircuitOpen,
    /// Every backend of the role failed; `attempts` lists `name: kind`.
    #[error("every backend failed ({})", attempts.join(", "))]
    Exhausted { attempts: Vec<String> },
    /// The backend failed while generating.
    #[error("generation failed: {0}")]
    Failed(String),
}

impl LlmError {
    /// A short, bounded label for metrics and health reports.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::Overloaded { .. } => "overloaded",
            LlmError::PromptTooLong { .. } => "prompt_too_long",
            LlmError::Unavailable(_) => "unavailable",
            LlmError::Transport(_) => "transport",
            LlmError::Tls(_) => "tls",
            LlmError::Timeout(_) => "timeout",
            LlmError::Malformed(_) => "malformed",
            LlmError::Rejected { .. } => "rejected",
            LlmError::Busy { .. } => "busy",
            LlmError::CircuitOpen => "circuit_open",
            LlmError::Exhausted { .. } => "exhausted",
            LlmError::Failed(_) => "failed",
        }
    }

    /// Whether this failure says something about the backend's health (and
    /// so counts towards its circuit breaker). A full queue or a prompt that
    /// is too long does not.
    pub fn is_backend_fault(&self) -> bool {
        !matches!(
            self,
            LlmError::Overloaded { .. } | LlmError::PromptTooLong { .. } | LlmError::CircuitOpen
        )
    }

    /// How long the backend asked to be left alone, when it said.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            LlmError::Busy { after_ms, .. } => Some(std::time::Duration::from_millis(*after_ms)),
            LlmError::Overloaded { retry_after_secs } => {
                Some(std::time::Duration::from_secs(*retry_after_secs))
            }
            _ => None,
        }
    }

    /// Whether trying the same backend again may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            LlmError::Unavailable(_)
                | LlmError::Transport(_)
                | LlmError::Overloaded { .. }
                | LlmError::Busy { .. }
        )
    }
}

/// Reads a generation to its end: the whole text and the summary. A stream
/// that closes before its summary is a failed generation (the backend went
/// away mid-reply), never a short reply.
pub async fn read_to_end(
    mut stream: GenerationStream,
) -> Result<(String, GenerationUsage), LlmError> {
    let mut text = String::new();
    while let Some(event) = stream.recv().await {
        match event? {
            GenerationEvent::Delta(d) => text.push_str(&d),
            GenerationEvent::Done(usage) => return Ok((text, usage)),
        }
    }
    Err(LlmError::Failed(
        "generation ended before its summary".into(),
    ))
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

/// Progress of a model download, as reported by the backend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PullProgress {
    pub status: String,
    pub completed: Option<u64>,
    pub total: Option<u64>,
}

/// What [`LlmBackend::provision`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionOutcome {
    /// The model was there already.
    Present,
    /// The model was downloaded now.
    Pulled,
}

/// Receives download progress; called from the provisioning task.
pub type ProgressSink = std::sync::Arc<dyn Fn(PullProgress) + Send + Sync>;

/// A place held with a backend for a generation about to start (see
/// [`LlmBackend::reserve`]); dropping it gives the place back.
#[derive(Default)]
pub struct Reservation(Option<Box<dyn Send + Sync>>);

impl Reservation {
    /// A place that `guard` gives back when dropped.
    pub fn held(guard: impl Send + Sync + 'static) -> Self {
        Self(Some(Box::new(guard)))
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reservation(held)"
        } else {
            "Reservation(none)"
        })
    }
}

#[async_trait]
pub trait LlmBackend: Send + Sync {
    /// Short backend name, e.g. `embedded` or `ollama`.
    fn name(&self) -> &str;
    /// Model identifier shown to clients.
    fn model(&self) -> &str;
    /// Tokens the model can attend to (prompt plus reply).
    fn context_window(&self) -> usize;
    /// Tokens each of `prompts` takes once formatted with the model's chat
    /// template: exact for the embedded engine, a conservative estimate for
    /// remote ones. Several prompts are counted in one call; `role` says
    /// which backends will answer (the router counts with the largest).
    async fn count_tokens(
        &self,
        role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError>;
    /// Start generating. Errors that happen before any token (queue full,
    /// prompt too long, backend down) are returned here; later ones arrive
    /// on the stream.
    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError>;
    /// Hold a place for a generation of `role` about to start, or
    /// `Err(seconds to wait)` when it would be refused for load. Taken
    /// before a turn is prepared, so that a chat that cannot be served is
    /// refused before any work is spent on it, and held until `generate`
    /// is called, so that a burst of chats being prepared counts as the
    /// load it is about to be.
    fn reserve(&self, _role: ModelRole) -> Result<Reservation, u64> {
        Ok(Reservation::default())
    }
    async fn health(&self) -> BackendHealth;
    /// Make sure the model is available (download it when the backend can),
    /// reporting progress to `progress`. `force` downloads again.
    async fn provision(
        &self,
        _force: bool,
        _progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        let h = self.health().await;
        if h.healthy {
            Ok(ProvisionOutcome::Present)
        } else {
            Err(LlmError::Unavailable(h.detail))
        }
    }
}

/// Tokens one prompt takes (see [`LlmBackend::count_tokens`]).
pub async fn count_prompt(
    llm: &dyn LlmBackend,
    role: ModelRole,
    messages: Vec<ChatMessage>,
) -> Result<usize, LlmError> {
    let counts = llm.count_tokens(role, &[messages]).await?;
    counts
        .first()
        .copied()
        .ok_or_else(|| LlmError::Failed("no token count".into()))
}

/// A conservative token count for backends whose tokenizer is remote: about
/// three bytes per token (English averages four) plus a few tokens of chat
/// template per message. Overestimating only drops an old turn early;
/// underestimating would overflow the remote context window.
pub fn estimate_prompt_tokens(messages: &[ChatMessage]) -> usize {
    messages
        .iter()
        .map(|m| m.content.len().div_ceil(3) + 4)
        .sum::<usize>()
        + 2
}

/// What a generation failure means to a caller of the core: the codes
/// clients see.
impl From<LlmError> for CoreError {
    fn from(e: LlmError) -> Self {
        match e {
            LlmError::Overloaded { retry_after_secs } => CoreError::Overloaded { retry_after_secs },
            LlmError::PromptTooLong { .. } => CoreError::PromptTooLarge,
            e @ LlmError::Exhausted { .. } => CoreError::BackendsExhausted(e.to_string()),
            e @ LlmError::Timeout(_) => CoreError::BackendTimeout(e.to_string()),
            e @ LlmError::Tls(_) => CoreError::BackendTls(e.to_string()),
            e => CoreError::BackendFailed(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FinishReason;
    use std::time::Duration;

    fn usage() -> GenerationUsage {
        GenerationUsage {
            model: "m".into(),
            prompt_tokens: 7,
            completion_tokens: 2,
            finish_reason: FinishReason::Stop,
            mean_logprob: None,
            time_to_first_token: Duration::from_millis(3),
            queued: Duration::ZERO,
            total: Duration::from_millis(9),
        }
    }

    /// A stream holding `events`, closed after them.
    fn stream(events: Vec<Result<GenerationEvent, LlmError>>) -> GenerationStream {
        let (tx, rx) = tokio::sync::mpsc::channel(events.len().max(1));
        for e in events {
            tx.try_send(e).unwrap();
        }
        rx
    }

    #[tokio::test]
    async fn a_generation_read_to_its_end_gives_the_whole_text_and_the_summary() {
        let s = stream(vec![
            Ok(GenerationEvent::Delta("Hel".into())),
            Ok(GenerationEvent::Delta("lo".into())),
            Ok(GenerationEvent::Done(usage())),
        ]);
        assert_eq!(read_to_end(s).await, Ok(("Hello".into(), usage())));
    }

    #[tokio::test]
    async fn a_stream_that_closes_before_its_summary_is_a_failure() {
        let s = stream(vec![Ok(GenerationEvent::Delta("Hel".into()))]);
        let e = read_to_end(s).await.unwrap_err();
        assert_eq!(e.kind(), "failed");
        let e = CoreError::from(e);
        assert!(matches!(e, CoreError::BackendFailed(_)), "{e:?}");
    }

    #[tokio::test]
    async fn a_failure_in_the_stream_is_returned_as_it_came() {
        let s = stream(vec![
            Ok(GenerationEvent::Delta("Hel".into())),
            Err(LlmError::Timeout("idle".into())),
            Ok(GenerationEvent::Done(usage())),
        ]);
        assert_eq!(read_to_end(s).await, Err(LlmError::Timeout("idle".into())));
    }
}
