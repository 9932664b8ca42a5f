//! The embedded engine: a GGUF model run in-process by llama.cpp.
//!
//! One engine thread owns a llama.cpp context whose KV cache holds
//! `parallel` sequences, and decodes every running reply in one batch per
//! step with `threads` compute threads in all (see `worker`). Requests wait
//! in a bounded FIFO queue; when it is full, or when the replies ahead
//! would keep a new one waiting longer than `max_queue_wait` (`admission`),
//! `generate` answers `Overloaded` at once instead of piling up work. The engine never runs on
//! the async runtime. A request whose consumer has gone away is skipped if
//! still queued and stopped between tokens if running.
//!
//! A LoRA adapter is switched without a restart (`switch`): a second engine
//! is built beside the running one (model, adapter and context; about a
//! tenth of a second for the default model) and replaces it atomically. New
//! requests go to the new engine; the old one finishes what it had queued
//! and running, then stops. Its prompt cache goes with it.

mod admission;
mod load;
mod logprob;
mod prefill;
#[cfg(feature = "bench")]
mod raw;
mod reuse;
mod sampling;
mod slot;
mod switch;
mod weights;
mod worker;

pub use load::load_backend;
#[cfg(feature = "bench")]
pub use raw::{
    RawBatchRun, RawRun, SamplingCost, raw_answer_logprob, raw_batched_greedy, raw_greedy_decode,
    raw_sampling_cost,
};
pub use switch::{ActiveAdapter, AdapterFile};
pub use weights::{Outcome as WeightsOutcome, Weights};

use async_trait::async_trait;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
/// The engine's token type (of [`EmbeddedBackend::prompt_tokens`]).
pub use llama_cpp_2::token::LlamaToken;
use mongars_core::domain::{ChatMessage, GenerationRequest, ModelRole};
use mongars_core::ports::{BackendHealth, GenerationStream, LlmBackend, LlmError, Reservation};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, mpsc};
use std::time::Instant;

/// `Retry-After` when the queue is full.
const FULL_QUEUE_RETRY_SECS: u64 = 2;

/// Settings of the embedded engine.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    pub model_path: PathBuf,
    /// Compute threads of the engine, whatever `parallel` is.
    pub threads: usize,
    /// Context window per reply, in tokens (capped by the model's own).
    pub context_tokens: u32,
    /// Replies generated together, one sequence each in a shared batch.
    pub parallel: usize,
    /// Requests that may wait for a worker.
    pub queue_capacity: usize,
    /// Longest expected wait for a slot a request is queued for; zero: no
    /// limit but `queue_capacity`.
    pub max_queue_wait: std::time::Duration,
    /// Move a conversation's kept turns down the cache when its history
    /// window moves (`reuse`), where the model allows it.
    pub move_kept_turns: bool,
    /// The model file as it is, or widened to Q8_0 (`weights`).
    pub weights: Weights,
}

/// State shared by the backend handle and its workers.
pub(crate) struct Shared {
    pub model: LlamaModel,
    pub template: LlamaChatTemplate,
    pub model_name: String,
    pub n_ctx: usize,
    pub threads: usize,
    /// Sequences of the context.
    pub parallel: usize,
    /// Whether kept turns are moved down the cache (`reuse`): asked for,
    /// and possible with this model.
    pub move_kept_turns: bool,
    /// The fewest tokens a move must bring down (`reuse::worth_moving`).
    pub worth_moving: usize,
    /// Counted across engines: an adapter switch keeps them.
    pub load: Arc<Load>,
}

/// Replies running and waiting, and what the engines have done.
pub(crate) struct Load {
    pub active: AtomicUsize,
    pub queued: AtomicUsize,
    /// Places held by turns being prepared (`LlmBackend::reserve`).
    pub reserved: AtomicUsize,
    pub counters: Counters,
    pub admission: admission::Admission,
}

impl Load {
    pub fn new(max_queue_wait: std::time::Duration) -> Self {
        Self {
            active: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
            counters: Counters::default(),
            admission: admission::Admission::new(max_queue_wait),
        }
    }
}

/// A reserved place, given back when dropped.
struct Reserved(Arc<Load>);

impl Drop for Reserved {
    fn drop(&mut self) {
        self.0.reserved.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the engine thread has done, counted as it goes.
#[derive(Default)]
pub(crate) struct Counters {
    pub steps: AtomicU64,
    pub sequence_steps: AtomicU64,
    pub widest: AtomicUsize,
    pub prompt_read: AtomicU64,
    pub prompt_reused: AtomicU64,
    pub prompt_moved: AtomicU64,
}

/// What the engine has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Decode calls.
    pub steps: u64,
    /// Replies served by those calls, summed over calls (a step that gives
    /// four replies a token counts four).
    pub sequence_steps: u64,
    /// The most replies in one decode call.
    pub widest_step: usize,
    /// Prompt tokens read into the context.
    pub prompt_tokens_read: u64,
    /// Prompt tokens found already in the context (the prompt cache).
    pub prompt_tokens_reused: u64,
    /// Of those, tokens of kept turns moved down the cache after their
    /// conversation's history window moved.
    pub prompt_tokens_moved: u64,
}

pub(crate) struct Job {
    pub prompt: Vec<LlamaToken>,
    pub request: GenerationRequest,
    pub received: Instant,
    pub tx: tokio::sync::mpsc::Sender<Result<mongars_core::domain::GenerationEvent, LlmError>>,
}

/// One running engine: its model (with the adapter, if any) and the queue
/// of its thread. Dropping the last handle lets the thread finish its work
/// and stop.
pub(crate) struct Engine {
    pub shared: Arc<Shared>,
    pub jobs: mpsc::SyncSender<Job>,
    pub adapter: Option<ActiveAdapter>,
}

/// What every engine of a backend shares: its settings and what the model
/// file said at the first load.
pub(crate) struct Setup {
    pub config: EmbeddedConfig,
    pub model_name: String,
    pub n_ctx: usize,
    /// The file the engines load: the model file or its widened copy.
    pub weights_path: PathBuf,
    pub weights_outcome: WeightsOutcome,
}

pub struct EmbeddedBackend {
    config: Setup,
    engine: RwLock<Arc<Engine>>,
    load: Arc<Load>,
    /// One switch at a time.
    switching: std::sync::Mutex<()>,
}

impl EmbeddedBackend {
    /// What loading did to the model's weights (`Weights`).
    pub fn weights_outcome(&self) -> WeightsOutcome {
        self.config.weights_outcome
    }

    /// The engine new requests go to.
    pub(crate) fn current(&self) -> Arc<Engine> {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Format `messages` with the model's chat template and tokenize them.
    fn tokenize(&self, messages: &[ChatMessage]) -> Result<Vec<LlamaToken>, LlmError> {
        self.templated(messages, true)
    }

    /// `messages` written with the model's chat template (followed by the
    /// opening of the assistant's turn when `add_assistant`), tokenized.
    fn templated(
        &self,
        messages: &[ChatMessage],
        add_assistant: bool,
    ) -> Result<Vec<LlamaToken>, LlmError> {
        let chat: Vec<LlamaChatMessage> = messages
            .iter()
            .map(|m| {
                LlamaChatMessage::new(m.role.as_str().to_string(), m.content.replace('\0', ""))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| LlmError::Failed(format!("message: {e}")))?;
        let engine = self.current();
        let shared = &engine.shared;
        let text = shared
            .model
            .apply_chat_template(&shared.template, &chat, add_assistant)
            .map_err(|e| LlmError::Failed(format!("chat template: {e}")))?;
        Ok(shared.model.vocab().tokenize(text.as_bytes(), true, true))
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.load.counters;
        EngineStats {
            steps: c.steps.load(Ordering::Relaxed),
            sequence_steps: c.sequence_steps.load(Ordering::Relaxed),
            widest_step: c.widest.load(Ordering::Relaxed),
            prompt_tokens_read: c.prompt_read.load(Ordering::Relaxed),
            prompt_tokens_reused: c.prompt_reused.load(Ordering::Relaxed),
            prompt_tokens_moved: c.prompt_moved.load(Ordering::Relaxed),
        }
    }

    /// Prompt tokens for `messages`, as the engine would feed them.
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<LlamaToken>, LlmError> {
        self.tokenize(messages)
    }

    /// The one token `text` is (special tokens included), if it is one.
    pub fn single_token(&self, text: &str) -> Option<u32> {
        let engine = self.current();
        let tokens = engine
            .shared
            .model
            .vocab()
            .tokenize(text.as_bytes(), false, true);
        match tokens[..] {
            [t] => u32::try_from(t.0).ok(),
            _ => None,
        }
    }

    /// The text of `tokens` (special tokens as nothing).
    pub fn detokenize(&self, tokens: &[u32]) -> String {
        let engine = self.current();
        let vocab = engine.shared.model.vocab();
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|&t| vocab.token_to_piece(LlamaToken(t as i32), false, None))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A training example: the tokens of `messages` followed by `reply` as
    /// the model's chat template writes a finished exchange, and how many
    /// of them are the prompt (the rest, end of turn included, are the
    /// reply's).
    pub fn chat_example(
        &self,
        messages: &[ChatMessage],
        reply: &str,
    ) -> Result<(Vec<u32>, usize), LlmError> {
        let prompt = self.tokenize(messages)?;
        let mut whole = messages.to_vec();
        whole.push(ChatMessage::new(
            mongars_core::domain::ChatRole::Assistant,
            reply,
        ));
        let tokens = self.templated(&whole, false)?;
        if tokens.len() <= prompt.len() || tokens[..prompt.len()] != prompt[..] {
            return Err(LlmError::Failed(
                "the chat template does not write the reply after the prompt".into(),
            ));
        }
        Ok((tokens.iter().map(|t| t.0 as u32).collect(), prompt.len()))
    }
}

#[async_trait]
impl LlmBackend for EmbeddedBackend {
    fn name(&self) -> &str {
        "embedded"
    }

    fn model(&self) -> &str {
        &self.config.model_name
    }

    fn context_window(&self) -> usize {
        self.config.n_ctx
    }

    async fn count_tokens(
        &self,
        _role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        prompts
            .iter()
            .map(|p| self.tokenize(p).map(|t| t.len()))
            .collect()
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let received = Instant::now();
        let prompt = self.tokenize(&request.messages)?;
        let n_ctx = self.config.n_ctx;
        // Leave room for at least one generated token.
        if prompt.len() >= n_ctx {
            return Err(LlmError::PromptTooLong {
                tokens: prompt.len(),
                limit: n_ctx - 1,
            });
        }
        let engine = self.current();
        let ahead =
            self.load.queued.load(Ordering::SeqCst) + self.load.active.load(Ordering::SeqCst);
        if let Err(retry_after_secs) = self.load.admission.check(ahead, engine.shared.parallel) {
            return Err(LlmError::Overloaded { retry_after_secs });
        }
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        self.load.queued.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            prompt,
            request,
            received,
            tx,
        };
        match engine.jobs.try_send(job) {
            Ok(()) => Ok(rx),
            Err(e) => {
                self.load.queued.fetch_sub(1, Ordering::SeqCst);
                match e {
                    mpsc::TrySendError::Full(_) => Err(LlmError::Overloaded {
                        retry_after_secs: FULL_QUEUE_RETRY_SECS,
                    }),
                    mpsc::TrySendError::Disconnected(_) => {
                        Err(LlmError::Unavailable("embedded engine stopped".into()))
                    }
                }
            }
        }
    }

    /// A place while the queue has room and the replies running, queued
    /// and reserved ahead leave one within `max_queue_wait`.
    fn reserve(&self, _role: ModelRole) -> Result<Reservation, u64> {
        let load = &self.load;
        let queued = load.queued.load(Ordering::SeqCst);
        let reserved = load.reserved.fetch_add(1, Ordering::SeqCst);
        let place = Reservation::held(Reserved(load.clone()));
        if queued + reserved >= self.config.config.queue_capacity.max(1) {
            return Err(FULL_QUEUE_RETRY_SECS);
        }
        let ahead = queued + reserved + load.active.load(Ordering::SeqCst);
        load.admission
            .check(ahead, self.current().shared.parallel)
            .map(|()| place)
    }

    async fn health(&self) -> BackendHealth {
        let adapter = match self.active_adapter() {
            Some(a) => format!(", adapter {}", a.id),
            None => String::new(),
        };
        BackendHealth {
            healthy: true,
            detail: format!(
                "{} loaded, {} token context{adapter}",
                self.config.model_name, self.config.n_ctx
            ),
            active: self.load.active.load(Ordering::SeqCst),
            queued: self.load.queued.load(Ordering::SeqCst),
        }
    }
}
