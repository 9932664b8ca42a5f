//! The conversation pipeline: one chat turn from a person's message to a
//! stored, paced reply. See docs/ARCHITECTURE.md for the walkthrough.

mod context;
#[cfg(test)]
mod counting;
mod finish;
mod prompt;
pub mod recovery;
mod reply;
mod service;
pub mod speech;
mod stream;

pub use context::{ContextRequest, ContextTrace, Mind, TracedMemory, TracedSource, TurnContext};
pub use prompt::{PromptParts, fit_history};
pub use reply::{ChatEvent, ChatReply, confidence_from_logprob};
pub use service::{ChatRequest, ConversationOptions, ConversationService, history_window};
pub use stream::{CANCELLED, ChatStream};
