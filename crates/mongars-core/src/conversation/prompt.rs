//! Prompt assembly within a token budget counted by the model's tokenizer.

use crate::domain::{ChatMessage, ChatRole, ModelRole, Turn};
use crate::error::CoreError;
use crate::ports::LlmBackend;

/// What a turn's prompt is made of, before fitting.
pub struct PromptParts<'a> {
    pub system: &'a str,
    /// Past turns, newest first, as repositories return them.
    pub recent: &'a [Turn],
    /// How many of the newest `recent` turns are replayed with the notes
    /// they were asked with (see `noted_turns`); older turns go without.
    pub noted: usize,
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
        for (i, t) in turns.iter().enumerate().rev() {
            messages.extend(turn_messages(t, i < self.noted));
        }
        if !self.note.is_empty() {
            messages.push(ChatMessage::new(ChatRole::System, self.note));
        }
        messages.push(ChatMessage::new(ChatRole::User, self.message));
        messages
    }

    /// The bare prompt with the `i`th newest turn's messages put in: what
    /// that turn adds.
    fn with_one(&self, bare: &[ChatMessage], i: usize) -> Vec<ChatMessage> {
        let at = usize::from(!self.system.is_empty());
        let mut m = bare.to_vec();
        m.splice(at..at, turn_messages(&self.recent[i], i < self.noted));
        m
    }
}

fn turn_messages(t: &Turn, with_note: bool) -> Vec<ChatMessage> {
    let Some(response) = &t.response else {
        return Vec::new();
    };
    let mut m = Vec::with_capacity(3);
    let note = t.note.as_deref().filter(|n| with_note && !n.is_empty());
    if let Some(n) = note {
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
/// Usually the whole window fits: one count. Otherwise counting takes one
/// call for the bare prompt and what each turn adds, and one to check the
/// assembled prompt (chat templates make the parts add up almost exactly;
/// when they do not, one more turn is dropped and counted).
pub async fn fit_history(
    llm: &dyn LlmBackend,
    role: ModelRole,
    parts: &PromptParts<'_>,
    budget: usize,
) -> Result<(Vec<ChatMessage>, usize), CoreError> {
    let whole = parts.assemble(parts.recent.len());
    let tokens = crate::ports::count_prompt(llm, role, whole.clone()).await?;
    if tokens <= budget {
        return Ok((whole, tokens));
    }
    if parts.recent.is_empty() {
        return Err(CoreError::PromptTooLarge);
    }
    let bare = parts.assemble(0);
    let mut candidates = Vec::with_capacity(parts.recent.len() + 1);
    candidates.push(bare.clone());
    candidates.extend((0..parts.recent.len()).map(|i| parts.with_one(&bare, i)));
    let counts = llm.count_tokens(role, &candidates).await?;
    let bare_tokens = counts.first().copied().unwrap_or(usize::MAX);
    if bare_tokens > budget {
        return Err(CoreError::PromptTooLarge);
    }
    let mut keep = 0;
    let mut estimate = bare_tokens;
    // The whole window is already known not to fit: at most all but one.
    for added in counts.iter().skip(1).take(parts.recent.len() - 1) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::counting::Words;
    use crate::domain::TurnStatus;

    fn turn(i: usize) -> Turn {
        Turn {
            id: format!("t{i}"),
            user_id: 1,
            session_id: None,
            query: format!("question {i} in five words"),
            response: Some(format!("answer {i} in five words")),
            status: TurnStatus::Complete,
            error_code: None,
            model: None,
            prompt_tokens: None,
            completion_tokens: None,
            confidence: None,
            speech_turn: None,
            created_at: chrono::Utc::now(),
            completed_at: None,
            expires_at: None,
            note: None,
        }
    }

    /// Fits three turns, newest first, under `budget`: the contents kept
    /// and how many prompts each count call took.
    async fn fit(budget: usize) -> Result<(Vec<String>, usize, Vec<usize>), CoreError> {
        let recent = [turn(3), turn(2), turn(1)];
        let parts = PromptParts {
            system: "Be brief.",
            recent: &recent,
            noted: recent.len(),
            note: "",
            message: "the new message",
        };
        let llm = Words::default();
        let (messages, tokens) = fit_history(&llm, ModelRole::General, &parts, budget).await?;
        let calls = llm.0.lock().unwrap().clone();
        let contents = messages.into_iter().map(|m| m.content).collect();
        Ok((contents, tokens, calls))
    }

    #[tokio::test]
    async fn a_window_that_fits_is_counted_once() {
        // System 2 + 4, each turn (5 + 4) x 2, message 3 + 4.
        let (contents, tokens, calls) = fit(67).await.unwrap();
        assert_eq!(tokens, 67);
        assert_eq!(contents.len(), 8);
        assert_eq!(contents[1], "question 1 in five words", "oldest first");
        assert_eq!(contents[7], "the new message");
        assert_eq!(calls, [1]);
    }

    #[tokio::test]
    async fn the_oldest_turns_give_way_to_the_budget() {
        let (contents, tokens, calls) = fit(66).await.unwrap();
        assert_eq!(tokens, 49);
        assert_eq!(contents[1], "question 2 in five words");
        assert_eq!(contents.len(), 6);
        assert_eq!(
            calls,
            [1, 4, 1],
            "whole, then bare and each turn, then the fit"
        );
        let (contents, tokens, _) = fit(13).await.unwrap();
        assert_eq!(
            (contents.len(), tokens),
            (2, 13),
            "system and message alone"
        );
        assert!(matches!(fit(12).await, Err(CoreError::PromptTooLarge)));
    }

    /// A conversation of `turns` chats with a history of at most `max`
    /// turns, each asked with a note: every prompt, oldest first.
    async fn converse(turns: u64, max: u32) -> Vec<Vec<ChatMessage>> {
        use crate::conversation::service::{history_window, noted_turns};
        let llm = Words::default();
        let (mut past, mut prompts) = (Vec::<Turn>::new(), Vec::new());
        for n in 0..turns {
            let window = history_window(n, max) as usize;
            let recent: Vec<Turn> = past.iter().rev().take(window).cloned().collect();
            let note = format!("note {n}");
            let parts = PromptParts {
                system: "Be brief.",
                recent: &recent,
                noted: noted_turns(n, max) as usize,
                note: &note,
                message: &format!("question {n} in five words"),
            };
            let (prompt, _) = fit_history(&llm, ModelRole::General, &parts, 100_000)
                .await
                .unwrap();
            let mut asked = turn(n as usize);
            asked.note = Some(note);
            past.push(asked);
            prompts.push(prompt);
        }
        prompts
    }

    fn notes(prompt: &[ChatMessage]) -> Vec<&str> {
        prompt
            .iter()
            .filter(|m| m.content.starts_with("note "))
            .map(|m| m.content.as_str())
            .collect()
    }

    #[tokio::test]
    async fn each_prompt_begins_as_the_last_until_the_window_moves_and_drops_old_notes() {
        use crate::conversation::service::history_window;
        let max = 6;
        let prompts = converse(30, max).await;
        let mut moves = 0;
        for n in 1..prompts.len() {
            let start = |n: usize| n - history_window(n as u64, max) as usize;
            let (last, this) = (&prompts[n - 1], &prompts[n]);
            if start(n) == start(n - 1) {
                assert_eq!(
                    this[..last.len()],
                    last[..],
                    "prompt {n} begins as {}",
                    n - 1
                );
                continue;
            }
            moves += 1;
            // Read again from the system prompt on: only this message's note.
            let own = format!("note {n}");
            assert_eq!(notes(this), [own.as_str()], "prompt {n}");
        }
        assert_eq!(
            moves, 8,
            "a window of 6 moves every 3 turns from the seventh"
        );
        // Before the first move every turn comes with its note; the last
        // prompt replays that of the one turn added since the last move.
        assert_eq!(notes(&prompts[6]).len(), 7);
        assert_eq!(notes(&prompts[29]), ["note 28", "note 29"]);
        assert_eq!(
            prompts[29]
                .iter()
                .filter(|m| m.role == ChatRole::User)
                .count(),
            6,
            "five turns of history and the message"
        );
    }
}
