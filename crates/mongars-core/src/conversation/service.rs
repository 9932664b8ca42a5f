//! The chat pipeline: validate, rate-limit, load history, fit the prompt in
//! the token budget, keep the user's message, generate, plan speech, store.

use super::context::{ContextRequest, ContextTrace, Mind};
use super::finish::{Announce, Finish, Learn, TurnRun};
use super::prompt::{PromptParts, fit_history};
use super::reply::ChatReply;
use super::speech;
use super::stream::{AbandonReason, ChatStream};
use crate::auth::Principal;
use crate::domain::{
    GenerationRequest, ModelRole, NewTurn, PerRole, SamplingParams, Turn, UserMessage,
    classify_task,
};
use crate::error::CoreError;
use crate::ports::{Clock, EventBus, GenerationStream, LlmBackend, RateLimiter, TurnRepository};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct ConversationOptions {
    pub system_prompt: String,
    /// Past turns of the session offered to the prompt (fewer if they do not fit).
    pub history_turns: u32,
    pub max_message_chars: usize,
    /// Sampling defaults of each model role.
    pub sampling: PerRole<SamplingParams>,
    /// This process, as stored on the turns it runs, so that turns left
    /// behind by a process that died can be told from turns in flight.
    pub owner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub message: String,
    pub session_id: Option<String>,
}

pub struct ConversationService {
    llm: Arc<dyn LlmBackend>,
    turns: Arc<dyn TurnRepository>,
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
    options: ConversationOptions,
    mind: Mind,
    events: Option<Arc<dyn EventBus>>,
}

impl ConversationService {
    pub fn new(
        llm: Arc<dyn LlmBackend>,
        turns: Arc<dyn TurnRepository>,
        limiter: Arc<dyn RateLimiter>,
        clock: Arc<dyn Clock>,
        mind: Mind,
        options: ConversationOptions,
    ) -> Self {
        Self {
            llm,
            turns,
            limiter,
            clock,
            options,
            mind,
            events: None,
        }
    }

    pub fn llm(&self) -> &Arc<dyn LlmBackend> {
        &self.llm
    }

    pub fn options(&self) -> &ConversationOptions {
        &self.options
    }

    /// Announce turns and streamed replies on this bus.
    pub fn with_events(mut self, events: Arc<dyn EventBus>) -> Self {
        self.events = Some(events);
        self
    }

    /// Take one request from the caller's bucket (429 when empty).
    pub async fn check_rate(&self, who: &Principal) -> Result<(), CoreError> {
        self.limiter
            .acquire(who.id)
            .await
            .map_err(|retry_after_secs| CoreError::RateLimited { retry_after_secs })
    }

    /// One turn with memory of the session, streamed. Input problems and
    /// backends too busy to start it are returned before anything is stored; from then on the
    /// user's message is kept even when generation fails, and the turn runs
    /// in a task of its own that always ends it `complete` or `failed`,
    /// whatever becomes of the caller (see [`ChatStream`]).
    #[tracing::instrument(skip_all, fields(user_id = who.id))]
    pub async fn chat_stream(
        &self,
        who: &Principal,
        req: ChatRequest,
    ) -> Result<ChatStream, CoreError> {
        let started = Instant::now();
        let message = UserMessage::parse(&req.message, self.options.max_message_chars)?;
        let session = crate::domain::parse_session_id(req.session_id.as_deref())?;
        let role = classify_task(message.as_str());
        // No recall, no prompt, nothing stored and nothing taken from the
        // user's rate for a chat the backends cannot take now: it is
        // refused at once, to be tried again. The place is held until
        // generation starts.
        let place = self
            .llm
            .reserve(role)
            .map_err(|retry_after_secs| CoreError::Overloaded { retry_after_secs })?;
        self.check_rate(who).await?;
        let working = &self.mind.working;
        let position = working.position(who.id, session.as_deref()).await?;
        let window = history_window(position.ordinal(), self.options.history_turns);
        let recent = working.recent(who.id, session.as_deref(), window).await?;
        let budget = self.prompt_budget(role);
        let context = self
            .mind
            .context(
                self.llm.as_ref(),
                &ContextRequest {
                    base: &self.options.system_prompt,
                    user_id: who.id,
                    message: message.as_str(),
                    history: &recent,
                    role,
                    max_memory_tokens: budget / 4,
                },
            )
            .await;
        let parts = PromptParts {
            system: &context.system,
            recent: &recent,
            noted: noted_turns(position.ordinal(), self.options.history_turns) as usize,
            note: &context.note,
            message: message.as_str(),
        };
        let (messages, prompt_tokens) =
            fit_history(self.llm.as_ref(), role, &parts, budget).await?;
        // The id carries the turn's creation time to the millisecond.
        let created_at = self.clock.now();
        let turn_id = crate::domain::time_ordered_id(created_at);
        tracing::debug!(
            turn_id,
            prompt_tokens,
            history = (messages.len() - 1) / 2,
            prepared_us = started.elapsed().as_micros() as u64,
            "prompt assembled"
        );
        let tempo = speech::next_tempo(last_tempo(&recent), speech::words(message.as_str()));
        let reason = AbandonReason::default();
        let (trace, note) = stored_trace(&turn_id, &context.trace, &context.note);
        let run = TurnRun {
            turn: NewTurn {
                id: turn_id.clone(),
                user_id: who.id,
                session_id: session,
                query: message.as_str().to_string(),
                created_at,
                owner: self.options.owner.clone(),
                ordinals: position.ordinals,
                trace,
                note,
            },
            llm: self.llm.clone(),
            place,
            request: GenerationRequest {
                messages,
                sampling: self.options.sampling.get(role).clone(),
                role,
                account: Some(who.id),
            },
            finish: Finish {
                turns: Some(self.turns.clone()),
                clock: self.clock.clone(),
                turn_id,
                tempo,
                started,
                learn: Some(Learn {
                    user_id: who.id,
                    trim: position.trim_due,
                    query: message.as_str().to_string(),
                    query_vector: context.query_vector,
                    profile: context.profile,
                    profile_saved: false,
                    mind: self.mind.clone(),
                }),
                announce: self.events.clone().map(|bus| Announce {
                    bus,
                    user_id: who.id,
                    username: who.username.clone(),
                    query: message.as_str().to_string(),
                }),
                reason: reason.clone(),
            },
        };
        let (tx, rx) = mpsc::channel(64);
        let (stored_tx, stored) = oneshot::channel();
        tokio::spawn(run.run(tx, stored_tx));
        // The turn's task stores the message even if this caller is dropped
        // meanwhile; it then sees nobody listening and fails the turn.
        stored
            .await
            .map_err(|_| CoreError::Internal("the turn's task ended early".into()))??;
        Ok(ChatStream::new(rx, reason))
    }

    /// One turn, waited for. Same pipeline as [`Self::chat_stream`].
    pub async fn chat(&self, who: &Principal, req: ChatRequest) -> Result<ChatReply, CoreError> {
        self.chat_stream(who, req).await?.collect().await
    }

    /// The message straight to the model: no history, no system prompt,
    /// nothing stored. Same validation, rate limit and reply shape.
    pub async fn direct(&self, who: &Principal, req: ChatRequest) -> Result<ChatReply, CoreError> {
        let started = Instant::now();
        let message = UserMessage::parse(&req.message, self.options.max_message_chars)?;
        self.check_rate(who).await?;
        let role = classify_task(message.as_str());
        let parts = PromptParts {
            system: "",
            recent: &[],
            noted: 0,
            note: "",
            message: message.as_str(),
        };
        let (messages, _) =
            fit_history(self.llm.as_ref(), role, &parts, self.prompt_budget(role)).await?;
        let stream = self
            .llm
            .generate(GenerationRequest {
                messages,
                sampling: self.options.sampling.get(role).clone(),
                role,
                account: Some(who.id),
            })
            .await?;
        let (tx, rx) = mpsc::channel(64);
        let reason = AbandonReason::default();
        let finish = Finish {
            turns: None,
            clock: self.clock.clone(),
            turn_id: crate::domain::time_ordered_id(self.clock.now()),
            tempo: speech::next_tempo(None, speech::words(message.as_str())),
            started,
            learn: None,
            announce: None,
            reason: reason.clone(),
        };
        tokio::spawn(finish.drive(stream, tx));
        ChatStream::new(rx, reason).collect().await
    }

    /// Raw completion for the OpenAI-compatible API: caller-supplied messages
    /// and sampling, rate limited, checked against the context window.
    pub async fn complete(
        &self,
        who: &Principal,
        mut request: GenerationRequest,
    ) -> Result<(GenerationStream, usize), CoreError> {
        self.check_rate(who).await?;
        request.account = Some(who.id);
        let tokens =
            crate::ports::count_prompt(self.llm.as_ref(), request.role, request.messages.clone())
                .await?;
        if tokens >= self.llm.context_window() {
            return Err(CoreError::PromptTooLarge);
        }
        Ok((self.llm.generate(request).await?, tokens))
    }

    /// The user's turns in working memory, newest first.
    pub async fn history(&self, user_id: i64, limit: u32) -> Result<Vec<Turn>, CoreError> {
        Ok(self.mind.working.recent(user_id, None, limit).await?)
    }

    /// What recall, style and research put into a turn's prompt.
    pub async fn trace(&self, user_id: i64, turn_id: &str) -> Result<ContextTrace, CoreError> {
        let stored = self
            .turns
            .trace(user_id, turn_id)
            .await?
            .ok_or(CoreError::NotFound("turn"))?;
        Ok(stored
            .and_then(|json| serde_json::from_str::<ContextTrace>(&json).ok())
            .map(ContextTrace::with_section)
            .unwrap_or_default())
    }

    /// Delete every turn, memory, vector and the profile of the user.
    pub async fn forget(&self, user_id: i64) -> Result<crate::ports::ForgetReport, CoreError> {
        if let Some(memory) = &self.mind.memory {
            return memory.forget(user_id).await;
        }
        match &self.mind.records {
            Some(records) => Ok(records.forget_user(user_id).await?),
            None => Err(CoreError::Internal(
                "no store to delete user data from".into(),
            )),
        }
    }

    fn prompt_budget(&self, role: ModelRole) -> usize {
        self.llm
            .context_window()
            .saturating_sub(self.options.sampling.get(role).max_tokens as usize)
    }
}

/// How many of the `complete` past turns to offer the model, at most `max`.
///
/// The window's first turn moves in steps of half its size rather than one
/// turn at a time, so that between steps each prompt begins with the previous
/// one and the engine's prompt cache reads only what is new. The window holds
/// between `max / 2 + 1` and `max` turns.
pub fn history_window(complete: u64, max: u32) -> u32 {
    let max = u64::from(max);
    if complete <= max {
        return complete as u32;
    }
    let step = window_step(max);
    let start = (complete - max).div_ceil(step) * step;
    (complete - start) as u32
}

/// Turns the window's start moves by: half the window, at least one.
fn window_step(max: u64) -> u64 {
    (max / 2).max(1)
}

/// How many of the window's newest turns are replayed with their notes.
///
/// A note (recalled exchanges, research) is context for its own message. It
/// is replayed with its turn only so that the following prompts begin as this
/// one did and the engine's prompt cache holds. When the window's start
/// moves, what follows the system prompt no longer continues the last prompt
/// (it is read again, or moved down the cache by an engine that can): the
/// turns then in the window lose their notes, which keeps the prompt short,
/// and the turns added since keep theirs until the start moves again. Until
/// the window first moves every turn keeps its note, since the prompt has
/// never been read again from its start.
pub fn noted_turns(complete: u64, max: u32) -> u32 {
    let window = history_window(complete, max);
    if complete <= u64::from(max) {
        return window;
    }
    // The window holds `max - step + 1` turns right after its start moved.
    let max = u64::from(max);
    window.saturating_sub((max + 1 - window_step(max)) as u32)
}

fn last_tempo(recent: &[Turn]) -> Option<f64> {
    recent
        .iter()
        .find_map(|t| t.speech_turn.as_ref().map(|s| s.tempo))
}

/// What recall and research put into the prompt, as stored with the turn:
/// the trace as JSON and the note before the message, neither when there
/// is nothing to keep.
fn stored_trace(
    turn_id: &str,
    trace: &ContextTrace,
    note: &str,
) -> (Option<String>, Option<String>) {
    if *trace == ContextTrace::default() {
        return (None, None);
    }
    match serde_json::to_string(&trace.for_storage()) {
        Ok(json) => (Some(json), (!note.is_empty()).then(|| note.to_string())),
        Err(e) => {
            tracing::warn!(error = %e, turn_id, "could not serialise the context trace");
            (None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_window_moves_in_half_steps() {
        assert_eq!(history_window(0, 10), 0);
        assert_eq!(history_window(7, 10), 7);
        assert_eq!(history_window(10, 10), 10);
        let sizes: Vec<u32> = (11..=21).map(|n| history_window(n, 10)).collect();
        assert_eq!(sizes, [6, 7, 8, 9, 10, 6, 7, 8, 9, 10, 6]);
        // The window's first turn (n - size) only changes every 5 turns.
        let starts: Vec<u64> = (11..=21)
            .map(|n| n - u64::from(history_window(n, 10)))
            .collect();
        assert_eq!(starts, [5, 5, 5, 5, 5, 10, 10, 10, 10, 10, 15]);
        assert_eq!(history_window(5, 0), 0);
        assert_eq!(history_window(3, 1), 1);
    }

    #[test]
    fn notes_are_replayed_only_for_turns_added_since_the_window_moved() {
        let noted: Vec<u32> = (0..=21).map(|n| noted_turns(n, 10)).collect();
        assert_eq!(
            noted,
            [
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0
            ]
        );
        // Any window: never more notes than turns; none right after the
        // start moved; otherwise the turns noted before keep their notes and
        // the newest turn adds its own, so the prompt begins as the last.
        for max in 0..=7u32 {
            let start = |n: u64| n - u64::from(history_window(n, max));
            for n in 1..40u64 {
                let noted = noted_turns(n, max);
                assert!(noted <= history_window(n, max), "max {max}, {n} turns");
                if start(n) != start(n - 1) {
                    assert_eq!(noted, 0, "max {max}, {n} turns: the window just moved");
                } else {
                    assert_eq!(noted, noted_turns(n - 1, max) + 1, "max {max}, {n} turns");
                }
            }
        }
        assert_eq!(noted_turns(5, 0), 0);
    }
}
