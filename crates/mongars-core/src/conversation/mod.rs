//! The conversation pipeline: one chat turn from a person's message to a
//! stored, paced reply. See docs/ARCHITECTURE.md for the walkthrough.

mod context;
mod finish;
mod prompt;
pub mod recovery;
mod service;
pub mod speech;
mod stream;

pub use context::{ContextTrace, Mind, TracedMemory, TracedSource};
pub use prompt::fit_history;
pub use service::{
    ChatEvent, ChatReply, ChatRequest, ConversationOptions, ConversationService,
    confidence_from_logprob, history_window,
};
pub use stream::{CANCELLED, ChatStream};
