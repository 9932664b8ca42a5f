//! Chat messages, generation requests and the events a backend streams back.

use super::role::{ModelRole, classify_task};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// How to pick tokens. Temperature 0 means greedy (deterministic).
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    pub temperature: f32,
    pub top_p: f32,
    /// Most tokens to generate for the reply.
    pub max_tokens: u32,
    /// Generation stops before any of these strings; they are not returned.
    pub stop: Vec<String>,
    pub seed: Option<u32>,
}

impl SamplingParams {
    /// Always the most likely token, no stop strings: deterministic output.
    pub fn greedy(max_tokens: u32) -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            max_tokens,
            stop: Vec::new(),
            seed: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub messages: Vec<ChatMessage>,
    pub sampling: SamplingParams,
    /// Which model profile answers: the router picks its backends by role.
    pub role: ModelRole,
    /// The account whose conversation this is, when there is one. An
    /// engine may reuse what it computed for the same account's earlier
    /// prompts beyond their common beginning (the embedded engine moves a
    /// conversation's kept turns down its cache when the history window
    /// moves); it never reuses that for another account. It is not sent
    /// to other nodes.
    pub account: Option<i64>,
}

impl GenerationRequest {
    /// A request whose role is classified from its last user message.
    pub fn classified(messages: Vec<ChatMessage>, sampling: SamplingParams) -> Self {
        let role = last_user_text(&messages).map_or(ModelRole::General, classify_task);
        Self {
            messages,
            sampling,
            role,
            account: None,
        }
    }
}

/// The text of the last user message, if any.
pub fn last_user_text(messages: &[ChatMessage]) -> Option<&str> {
    messages
        .iter()
        .rev()
        .find(|m| m.role == ChatRole::User)
        .map(|m| m.content.as_str())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// End of sequence or a stop string.
    Stop,
    /// `max_tokens` or the context window was reached.
    Length,
    /// The consumer went away.
    Cancelled,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::Cancelled => "cancelled",
        }
    }
}

/// What a finished generation cost and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationUsage {
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish_reason: FinishReason,
    /// Mean natural-log probability of the generated tokens under the model's
    /// unmodified distribution; `None` when the backend cannot tell.
    pub mean_logprob: Option<f64>,
    /// From the start of the request to the first generated token.
    pub time_to_first_token: Duration,
    /// Time spent waiting in the backend's queue before work began.
    pub queued: Duration,
    pub total: Duration,
}

/// One item of a generation stream: text as it comes, then a summary.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    Delta(String),
    Done(GenerationUsage),
}
