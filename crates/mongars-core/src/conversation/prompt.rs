//! Prompt assembly within a token budget counted by the model's tokenizer.

use crate::domain::{ChatMessage, ChatRole, ModelRole, Turn};
use crate::error::CoreError;
use crate::ports::LlmBackend;

/// What a turn's prompt is made of, before fitting.
pub struct PromptParts<'a> {
    pub system: &'a str,
    /// Past turns, newest first, as repositories return them.
    pub recent: &'a [Turn],
    /// Context for this message only (recalled exchanges, research): placed
    /// after the history, it leaves the start of the prompt as it was on
    /// the previous turn, which the engine's prompt cache reuses.
    pub note: &'a str,
    pub message: &'a str,
}

impl PromptParts<'_> {
    /// `[system, the newest `keep` turns oldest first..., note, user]`.
    fn assemble(&self, keep: usize) -> Vec<ChatMessage> {
        let turns = &self.recent[..keep];
        let mut messages = Vec::with_capacity(turns.len() * 3 + 3);
        if !self.system.is_empty() {
            messages.push(ChatMessage::new(ChatRole::System, self.system));
        }
        for t in turns.iter().rev() {
            messages.extend(turn_messages(t));
        }
        if !self.note.is_empty() {
            messages.push(ChatMessage::new(ChatRole::System, self.note));
        }
        messages.push(ChatMessage::new(ChatRole::User, self.message));
        messages
    }

    /// The bare prompt with one turn's messages put in: what that turn adds.
    fn with_one(&self, bare: &[ChatMessage], turn: &Turn) -> Vec<ChatMessage> {
        let at = usize::from(!self.system.is_empty());
        let mut m = bare.to_vec();
        m.splice(at..at, turn_messages(turn));
        m
    }
}

fn turn_messages(t: &Turn) -> Vec<ChatMessage> {
    let Some(response) = &t.response else {
        return Vec::new();
    };
    let mut m = Vec::with_capacity(3);
    if let Some(n) = t.note.as_deref().filter(|n| !n.is_empty()) {
        m.push(ChatMessage::new(ChatRole::System, n));
    }
    m.push(ChatMessage::new(ChatRole::User, t.query.clone()));
    m.push(ChatMessage::new(ChatRole::Assistant, response.clone()));
    m
}

/// The prompt with the most recent turns that fit in `budget` tokens (the
/// oldest go first), and its token count. `PromptTooLarge` when even the
/// system prompt and the message alone do not fit.
///
/// Counting takes one call for the bare prompt and what each turn adds, and
/// one to check the assembled prompt (chat templates make the parts add up
/// almost exactly; when they do not, one more turn is dropped and counted).
pub async fn fit_history(
    llm: &dyn LlmBackend,
    role: ModelRole,
    parts: &PromptParts<'_>,
    budget: usize,
) -> Result<(Vec<ChatMessage>, usize), CoreError> {
    let bare = parts.assemble(0);
    let mut candidates = Vec::with_capacity(parts.recent.len() + 1);
    candidates.push(bare.clone());
    candidates.extend(parts.recent.iter().map(|t| parts.with_one(&bare, t)));
    let counts = llm.count_tokens(role, &candidates).await?;
    let bare_tokens = counts.first().copied().unwrap_or(usize::MAX);
    if bare_tokens > budget {
        return Err(CoreError::PromptTooLarge);
    }
    let mut keep = 0;
    let mut estimate = bare_tokens;
    for added in counts.iter().skip(1) {
        let next = estimate + added.saturating_sub(bare_tokens);
        if next > budget {
            break;
        }
        estimate = next;
        keep += 1;
    }
    while keep > 0 {
        let messages = parts.assemble(keep);
        let tokens = crate::ports::count_prompt(llm, role, messages.clone()).await?;
        if tokens <= budget {
            return Ok((messages, tokens));
        }
        keep -= 1;
    }
    Ok((bare, bare_tokens))
}
