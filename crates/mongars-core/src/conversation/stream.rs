//! A reply as its consumer sees it: events as they come, and a way to stop
//! waiting that says why.
//!
//! The turn itself runs in a task of its own that outlives whoever asked for
//! it (an HTTP handler cut off by its timeout, a client that hangs up, a
//! socket that closes): dropping the stream stops generation, and the task
//! still stores the turn as failed, with the reason given to
//! [`ChatStream::abandon`] or `conversation.cancelled`.

use super::reply::{ChatEvent, ChatReply};
use crate::error::CoreError;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Code stored on a turn whose consumer went away without saying why.
pub const CANCELLED: &str = "conversation.cancelled";

/// Why the consumer of a turn stopped waiting, shared with the turn's task.
#[derive(Clone, Default)]
pub(super) struct AbandonReason(Arc<OnceLock<&'static str>>);

impl AbandonReason {
    pub(super) fn code(&self) -> &'static str {
        self.0.get().copied().unwrap_or(CANCELLED)
    }
}

/// Events of one streamed turn: deltas, then `Done` or `Error`.
pub struct ChatStream {
    rx: mpsc::Receiver<ChatEvent>,
    reason: AbandonReason,
}

impl ChatStream {
    pub(super) fn new(rx: mpsc::Receiver<ChatEvent>, reason: AbandonReason) -> Self {
        Self { rx, reason }
    }

    /// The next event; `None` once the turn has ended.
    pub async fn recv(&mut self) -> Option<ChatEvent> {
        self.rx.recv().await
    }

    /// Stop waiting: generation stops and the turn is stored as failed with
    /// `code` (a stable error code such as `request.timeout`).
    pub fn abandon(self, code: &'static str) {
        let _ = self.reason.0.set(code);
    }

    /// Wait for the whole reply.
    pub async fn collect(&mut self) -> Result<ChatReply, CoreError> {
        while let Some(event) = self.recv().await {
            match event {
                ChatEvent::Delta(_) => {}
                ChatEvent::Done(reply) => return Ok(*reply),
                ChatEvent::Error(e) => return Err(e),
            }
        }
        Err(CoreError::Internal(
            "reply stream ended without an answer".into(),
        ))
    }
}
