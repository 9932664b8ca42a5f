//! The tail of a turn: relay the reply as it streams, store it, then learn
//! from it off the reply's path.

use super::context::Mind;
use super::reply::{ChatEvent, ChatReply, confidence_from_logprob};
use super::speech;
use super::stream::AbandonReason;
use crate::domain::{
    FinishReason, GenerationEvent, GenerationRequest, GenerationUsage, NewTurn, TurnCompletion,
};
use crate::error::CoreError;
use crate::ports::{
    Clock, Event, EventBus, GenerationStream, LlmBackend, ProfileSave, Reservation, TurnRepository,
};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

async fn record_failure(turns: &dyn TurnRepository, turn_id: &str, code: &str) {
    if let Err(e) = turns.fail(turn_id, code).await {
        tracing::error!(error = %e, turn_id, "could not mark the turn failed");
    }
}

/// The tail of a turn, run as its own task: relays deltas, then stores and
/// announces the reply. If the consumer goes away the backend stream is
/// dropped, which stops generation.
pub(super) struct Finish {
    /// `None` for replies that are not stored.
    pub(super) turns: Option<Arc<dyn TurnRepository>>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) turn_id: String,
    pub(super) tempo: f64,
    pub(super) started: Instant,
    /// What to learn from the turn once it is stored.
    pub(super) learn: Option<Learn>,
    /// Where the user's sockets hear of the reply as it streams and ends.
    pub(super) announce: Option<Announce>,
    /// Why the consumer stopped waiting, if it did.
    pub(super) reason: AbandonReason,
}

/// A whole stored turn, run as a task of its own: store the message (with
/// its context trace), start generating, then [`Finish::drive`]. Nothing the
/// caller does after starting it (timing out, hanging up) can leave the turn
/// `pending`: every path below ends in `complete` or `failed`.
pub(super) struct TurnRun {
    pub(super) turn: NewTurn,
    pub(super) llm: Arc<dyn LlmBackend>,
    /// Held with the backend until generation starts.
    pub(super) place: Reservation,
    pub(super) request: GenerationRequest,
    pub(super) finish: Finish,
}

impl TurnRun {
    /// `stored` hears whether the message was stored (the caller's last
    /// chance to answer with a plain error); `tx` carries the reply.
    pub(super) async fn run(
        self,
        tx: mpsc::Sender<ChatEvent>,
        stored: oneshot::Sender<Result<(), CoreError>>,
    ) {
        let TurnRun {
            turn,
            llm,
            place,
            request,
            finish,
        } = self;
        let Some(turns) = finish.turns.clone() else {
            let _ = stored.send(Err(CoreError::Internal("no turn store".into())));
            return;
        };
        if let Err(e) = turns.start(turn).await {
            let _ = stored.send(Err(e.into()));
            return;
        }
        let _ = stored.send(Ok(()));
        let started = tokio::select! {
            r = llm.generate(request) => r,
            _ = tx.closed() => {
                finish.gone().await;
                return;
            }
        };
        drop(place);
        match started {
            Ok(stream) => finish.drive(stream, tx).await,
            Err(e) => {
                let err = CoreError::from(e);
                tracing::warn!(error = %err, turn_id = finish.turn_id, "generation failed before the first token");
                finish.fail(err.code()).await;
                let _ = tx.send(ChatEvent::Error(err)).await;
            }
        }
    }
}

/// Realtime events of one turn: `ai_model.response_chunk` for each delta,
/// `ai_model.response_complete` at the end, and `chat.message` once stored.
pub(super) struct Announce {
    pub(super) bus: Arc<dyn EventBus>,
    pub(super) user_id: i64,
    pub(super) username: String,
    pub(super) query: String,
}

impl Announce {
    fn send(&self, kind: &str, data: serde_json::Value) {
        self.bus
            .publish(Event::new(self.user_id, &self.username, kind, data));
    }

    fn chunk(&self, turn_id: &str, delta: &str) {
        self.send(
            "ai_model.response_chunk",
            json!({"delta": delta, "turn_id": turn_id}),
        );
    }

    fn failed(&self, turn_id: &str, code: &str) {
        self.send(
            "ai_model.response_complete",
            json!({"ok": false, "error": code, "turn_id": turn_id}),
        );
    }

    fn stored(&self, reply: &ChatReply) {
        self.send(
            "ai_model.response_complete",
            json!({"ok": true, "text": reply.response, "turn_id": reply.turn_id}),
        );
        self.send(
            "chat.message",
            json!({
                "query": self.query,
                "response": reply.response,
                "timestamp": reply.speech_turn.created_at,
                "speech_turn": reply.speech_turn,
                "turn_id": reply.turn_id,
            }),
        );
    }
}

pub(super) struct Learn {
    pub(super) user_id: i64,
    /// Working memory may be past its bound once this turn is in.
    pub(super) trim: bool,
    pub(super) query: String,
    /// The message's embedding from recall, if memory made one.
    pub(super) query_vector: Option<Vec<f32>>,
    /// The style profile as read for the prompt, if one was.
    pub(super) profile: Option<crate::personality::ReadProfile>,
    /// The message is in the stored profile: saved with the reply.
    pub(super) profile_saved: bool,
    pub(super) mind: Mind,
}

impl Learn {
    /// The profile read for the prompt with the message folded in, to be
    /// saved with the reply; `None` when there is no profile to fold into
    /// (then the message is learnt after the reply, reading the profile).
    fn profile_save(&mut self) -> Option<ProfileSave> {
        let personality = self.mind.personality.as_ref()?;
        let known = self.profile.take()?;
        match personality.fold(self.user_id, &self.query, known) {
            Ok((_, save)) => Some(save),
            Err(e) => {
                tracing::warn!(error = %e, "could not fold the message into the style profile");
                None
            }
        }
    }

    /// Everything that follows a stored reply, off the reply's path.
    fn after_reply(mut self, turn_id: String, response: String) {
        if let Some(memory) = &self.mind.memory {
            let vector = self.query_vector.take();
            memory.learn_in_background(self.user_id, turn_id, self.query.clone(), response, vector);
        }
        let after = self.mind.after.clone();
        after.spawn(async move {
            if self.trim
                && let Err(e) = self.mind.working.trim(self.user_id).await
            {
                tracing::warn!(error = %e, "could not trim working memory");
            }
            let Some(p) = &self.mind.personality else {
                return;
            };
            if self.profile_saved {
                return;
            }
            // Saved with the reply but over a version since replaced: the
            // profile is read again and the message folded into that.
            let known = self.profile.take();
            if let Err(e) = p.learn_over(self.user_id, &self.query, known).await {
                tracing::warn!(error = %e, "could not update the style profile");
            }
        });
    }
}

impl Finish {
    pub(super) async fn drive(mut self, mut stream: GenerationStream, tx: mpsc::Sender<ChatEvent>) {
        let mut text = String::new();
        loop {
            let item = tokio::select! {
                _ = tx.closed() => None,
                item = stream.recv() => Some(item),
            };
            let Some(item) = item else {
                drop(stream);
                self.gone().await;
                return;
            };
            match item {
                Some(Ok(GenerationEvent::Delta(delta))) => {
                    text.push_str(&delta);
                    if let Some(a) = &self.announce {
                        a.chunk(&self.turn_id, &delta);
                    }
                    if tx.send(ChatEvent::Delta(delta)).await.is_err() {
                        continue; // noticed as closed on the next loop
                    }
                }
                Some(Ok(GenerationEvent::Done(usage)))
                    if usage.finish_reason != FinishReason::Cancelled =>
                {
                    let event = match self.complete(text, usage).await {
                        Ok(reply) => {
                            if let Some(a) = &self.announce {
                                a.stored(&reply);
                            }
                            ChatEvent::Done(Box::new(reply))
                        }
                        Err(e) => {
                            if let Some(a) = &self.announce {
                                a.failed(&self.turn_id, e.code());
                            }
                            ChatEvent::Error(e)
                        }
                    };
                    let _ = tx.send(event).await;
                    return;
                }
                other => {
                    let err = match other {
                        Some(Err(e)) => CoreError::from(e),
                        _ => CoreError::BackendFailed("generation ended before its summary".into()),
                    };
                    tracing::warn!(error = %err, turn_id = self.turn_id, "generation failed");
                    self.fail(err.code()).await;
                    let _ = tx.send(ChatEvent::Error(err)).await;
                    return;
                }
            }
        }
    }

    async fn complete(
        &mut self,
        text: String,
        usage: GenerationUsage,
    ) -> Result<ChatReply, CoreError> {
        let response = text.trim().to_string();
        let now = self.clock.now();
        let speech_turn = speech::plan(&self.turn_id, &response, now, self.tempo);
        let confidence = confidence_from_logprob(usage.mean_logprob);
        let processing_time = self.started.elapsed().as_secs_f64();
        if let Some(turns) = &self.turns {
            let completion = TurnCompletion {
                response: response.clone(),
                model: usage.model.clone(),
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
                confidence,
                ttft_ms: usage.time_to_first_token.as_millis() as u64,
                generation_ms: usage.total.as_millis() as u64,
                total_ms: (processing_time * 1000.0) as u64,
                speech_turn: speech_turn.clone(),
                completed_at: now,
                working_until: self
                    .learn
                    .as_ref()
                    .map_or(now, |l| l.mind.working.expiry(now)),
            };
            // The message goes into the style profile in the reply's own
            // transaction: one write of the database where there were two.
            match self.learn.as_mut().and_then(Learn::profile_save) {
                Some(save) => {
                    let saved = turns
                        .complete_with_profile(&self.turn_id, &completion, &save)
                        .await?;
                    if let Some(learn) = self.learn.as_mut() {
                        learn.profile_saved = saved;
                    }
                }
                None => turns.complete(&self.turn_id, &completion).await?,
            }
        }
        tracing::info!(
            turn_id = self.turn_id,
            prompt_tokens = usage.prompt_tokens,
            completion_tokens = usage.completion_tokens,
            ttft_ms = usage.time_to_first_token.as_millis() as u64,
            total_ms = (processing_time * 1000.0) as u64,
            "reply complete"
        );
        if let Some(learn) = self.learn.take() {
            learn.after_reply(self.turn_id.clone(), response.clone());
        }
        Ok(ChatReply {
            turn_id: self.turn_id.clone(),
            response,
            confidence,
            processing_time: (processing_time * 1000.0).round() / 1000.0,
            speech_turn,
            usage,
        })
    }

    /// The consumer went away: generation has stopped; the turn fails with
    /// the reason it gave, or `conversation.cancelled`.
    async fn gone(&self) {
        let code = self.reason.code();
        tracing::info!(
            turn_id = self.turn_id,
            code,
            "reply abandoned; generation stopped"
        );
        self.fail(code).await;
    }

    async fn fail(&self, code: &str) {
        if let Some(a) = &self.announce {
            a.failed(&self.turn_id, code);
        }
        if let Some(turns) = &self.turns {
            record_failure(turns.as_ref(), &self.turn_id, code).await;
        }
    }
}
