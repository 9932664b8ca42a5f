//! A backend that plays a script instead of running a model, so tests can
//! drive the pipeline through failures a real model will not produce on
//! demand: refusing before the first token, breaking mid-stream, streaming
//! slowly. It counts one token per whitespace-separated word, plus four per
//! message for the template.

use async_trait::async_trait;
use mongars_core::domain::{
    ChatMessage, FinishReason, GenerationEvent, GenerationRequest, GenerationUsage, ModelRole,
};
use mongars_core::ports::{BackendHealth, GenerationStream, LlmBackend, LlmError};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Script {
    /// Stream these words, one per token.
    Reply(String),
    /// Fail before any token.
    Refuse(LlmError),
    /// Stream `n` words of the reply, then fail.
    BreakAfter(usize, String),
}

pub struct ScriptedBackend {
    script: Script,
    delay: Duration,
    context_window: usize,
    /// Generations running now; 0 once every stream has stopped.
    active: Arc<AtomicUsize>,
    /// Every request seen, for assertions on prompts.
    pub seen: std::sync::Mutex<Vec<GenerationRequest>>,
    /// `Some(reason)` makes `health` report the backend down.
    down: Option<String>,
    /// Each generation takes a permit before its first token (and keeps
    /// it): none left holds generations, running, until permits are added.
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl ScriptedBackend {
    pub fn new(script: Script) -> Self {
        Self {
            script,
            delay: Duration::ZERO,
            context_window: 2048,
            active: Arc::new(AtomicUsize::new(0)),
            seen: std::sync::Mutex::new(Vec::new()),
            down: None,
            gate: None,
        }
    }

    /// Hold each generation before its first token until `gate` has a
    /// permit for it.
    pub fn with_gate(mut self, gate: Arc<tokio::sync::Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Report unhealthy with this reason.
    pub fn unhealthy(mut self, reason: &str) -> Self {
        self.down = Some(reason.to_string());
        self
    }

    /// Wait this long before each token.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_context_window(mut self, tokens: usize) -> Self {
        self.context_window = tokens;
        self
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    fn count(messages: &[ChatMessage]) -> usize {
        messages
            .iter()
            .map(|m| m.content.split_whitespace().count() + 4)
            .sum()
    }
}

#[async_trait]
impl LlmBackend for ScriptedBackend {
    fn name(&self) -> &str {
        "scripted"
    }

    fn model(&self) -> &str {
        "scripted"
    }

    fn context_window(&self) -> usize {
        self.context_window
    }

    async fn count_tokens(
        &self,
        _role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        Ok(prompts.iter().map(|p| Self::count(p)).collect())
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let prompt_tokens = Self::count(&request.messages) as u32;
        let max_tokens = request.sampling.max_tokens as usize;
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request);
        }
        let (words, fail_at) = match &self.script {
            Script::Refuse(e) => return Err(e.clone()),
            Script::Reply(text) => (text.clone(), None),
            Script::BreakAfter(n, text) => (text.clone(), Some(*n)),
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let (delay, active) = (self.delay, self.active.clone());
        active.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.clone();
        tokio::spawn(async move {
            if let Some(gate) = gate {
                match gate.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => {
                        active.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                }
            }
            let started = Instant::now();
            let mut sent = 0u32;
            let mut finish = FinishReason::Stop;
            for (i, word) in words.split_whitespace().enumerate() {
                if fail_at == Some(i) {
                    let _ = tx
                        .send(Err(LlmError::Failed("scripted failure".into())))
                        .await;
                    active.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                if i >= max_tokens {
                    finish = FinishReason::Length;
                    break;
                }
                tokio::time::sleep(delay).await;
                let piece = if i == 0 {
                    word.to_string()
                } else {
                    format!(" {word}")
                };
                if tx.send(Ok(GenerationEvent::Delta(piece))).await.is_err() {
                    active.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                sent += 1;
            }
            let usage = GenerationUsage {
                model: "scripted".into(),
                prompt_tokens,
                completion_tokens: sent,
                finish_reason: finish,
                mean_logprob: Some(-0.1),
                time_to_first_token: delay,
                queued: Duration::ZERO,
                total: started.elapsed(),
            };
            let _ = tx.send(Ok(GenerationEvent::Done(usage))).await;
            active.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        BackendHealth {
            healthy: self.down.is_none(),
            detail: self.down.clone().unwrap_or_else(|| "scripted".into()),
            active: self.active(),
            queued: 0,
        }
    }
}
