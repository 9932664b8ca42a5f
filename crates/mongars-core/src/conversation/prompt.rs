//! Prompt assembly within a token budget counted by the model's tokenizer.

use crate::domain::{ChatMessage, ChatRole, Turn};
use crate::error::CoreError;
use crate::ports::LlmBackend;

/// Build `[system, past turns oldest first..., note, user]` so that it fits
/// in `budget` tokens, dropping the oldest turns first. `PromptTooLarge` when
/// even the system prompt and the message alone do not fit.
///
/// `note` is context for this message only (recalled exchanges, research):
/// placed after the history, it leaves the start of the prompt as it was on
/// the previous turn, which the engine's prompt cache reuses.
///
/// `recent` is newest first, as repositories return it.
pub async fn fit_history(
    llm: &dyn LlmBackend,
    system: &str,
    recent: &[Turn],
    note: &str,
    message: &str,
    budget: usize,
) -> Result<(Vec<ChatMessage>, usize), CoreError> {
    let assemble = |turns: &[Turn]| {
        let mut messages = Vec::with_capacity(turns.len() * 2 + 2);
        if !system.is_empty() {
            messages.push(ChatMessage::new(ChatRole::System, system));
        }
        for t in turns.iter().rev() {
            if let Some(response) = &t.response {
                if let Some(n) = t.note.as_deref().filter(|n| !n.is_empty()) {
                    messages.push(ChatMessage::new(ChatRole::System, n));
                }
                messages.push(ChatMessage::new(ChatRole::User, t.query.clone()));
                messages.push(ChatMessage::new(ChatRole::Assistant, response.clone()));
            }
        }
        if !note.is_empty() {
            messages.push(ChatMessage::new(ChatRole::System, note));
        }
        messages.push(ChatMessage::new(ChatRole::User, message));
        messages
    };
    let bare = assemble(&[]);
    let bare_tokens = llm.count_prompt_tokens(&bare).await?;
    if bare_tokens > budget {
        return Err(CoreError::PromptTooLarge);
    }
    // Keep the longest run of most recent turns that fits.
    let mut keep = recent.len();
    loop {
        if keep == 0 {
            return Ok((bare, bare_tokens));
        }
        let messages = assemble(&recent[..keep]);
        let tokens = llm.count_prompt_tokens(&messages).await?;
        if tokens <= budget {
            return Ok((messages, tokens));
        }
        keep -= 1;
    }
}
