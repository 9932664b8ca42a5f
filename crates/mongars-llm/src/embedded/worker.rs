//! One engine thread: owns a llama.cpp context and runs queued jobs.

use super::{Job, Shared};
use crate::text::TextAssembler;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use mongars_core::domain::{FinishReason, GenerationEvent, GenerationUsage, SamplingParams};
use mongars_core::ports::LlmError;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// Tokens fed to llama.cpp per decode call while reading the prompt.
const PREFILL_BATCH: usize = 512;

/// Creating contexts from one model concurrently is unsound in llama.cpp.
static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

pub(crate) fn run_worker(
    backend: &'static LlamaBackend,
    shared: &Shared,
    queue: &Mutex<mpsc::Receiver<Job>>,
    ready: mpsc::Sender<Result<(), LlmError>>,
) {
    let threads = i32::try_from(shared.threads).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(shared.n_ctx as u32))
        .with_n_batch(PREFILL_BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let context = {
        let _guard = CONTEXT_CREATION.lock().unwrap_or_else(|p| p.into_inner());
        shared.model.new_context(backend, params)
    };
    let mut ctx = match context {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(LlmError::Unavailable(format!(
                "llama.cpp context: {e}"
            ))));
            return;
        }
    };
    drop(ready);
    loop {
        let job = match queue.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else {
            return; // the backend was dropped
        };
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        if job.tx.is_closed() {
            continue; // the client left while the job waited
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let result = generate(&mut ctx, shared, &job);
        shared.active.fetch_sub(1, Ordering::SeqCst);
        let last = match result {
            Ok(usage) => Ok(GenerationEvent::Done(usage)),
            Err(e) => {
                tracing::warn!(error = %e, "embedded generation failed");
                Err(e)
            }
        };
        let _ = job.tx.blocking_send(last);
    }
}

fn sampler(p: &SamplingParams) -> LlamaSampler {
    if p.temperature <= 0.0 {
        return LlamaSampler::greedy();
    }
    LlamaSampler::chain_simple([
        LlamaSampler::top_k(40),
        LlamaSampler::top_p(p.top_p.clamp(0.01, 1.0), 1),
        LlamaSampler::temp(p.temperature),
        LlamaSampler::dist(p.seed.unwrap_or_else(rand_seed)),
    ])
}

fn rand_seed() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ std::process::id().rotate_left(16)
}

/// Natural-log probability of `token` under the raw logits.
fn logprob(logits: &[f32], token: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    logits
        .get(token)
        .map_or(f64::NEG_INFINITY, |&l| f64::from(l - max) - sum.ln())
}

fn generate(
    ctx: &mut LlamaContext<'_>,
    shared: &Shared,
    job: &Job,
) -> Result<GenerationUsage, LlmError> {
    let started = Instant::now();
    let queued = started.duration_since(job.received);
    let fail = |what: &str, e: &dyn std::fmt::Display| LlmError::Failed(format!("{what}: {e}"));
    let sampling = &job.request.sampling;
    ctx.clear_kv_cache();

    let prompt = &job.prompt;
    let mut batch = LlamaBatch::new(PREFILL_BATCH, 1);
    for (c, chunk) in prompt.chunks(PREFILL_BATCH).enumerate() {
        batch.clear();
        for (j, &token) in chunk.iter().enumerate() {
            let pos = c * PREFILL_BATCH + j;
            batch
                .add(token, pos as i32, &[0], pos + 1 == prompt.len())
                .map_err(|e| fail("batch", &e))?;
        }
        ctx.decode(&mut batch).map_err(|e| fail("prefill", &e))?;
        if job.tx.is_closed() {
            return Ok(Progress::default().usage(shared, job, queued, FinishReason::Cancelled));
        }
    }

    let vocab = shared.model.vocab();
    let mut sampler = sampler(sampling);
    let mut text = TextAssembler::new(&sampling.stop);
    let mut logit_index = batch.n_tokens() - 1;
    let mut position = prompt.len();
    let mut progress = Progress::default();
    let finish = loop {
        let token = sampler.sample(ctx, logit_index);
        progress.logprob_sum += logprob(ctx.get_logits_ith(logit_index), token.0 as usize);
        progress.generated += 1;
        progress.first_token_at.get_or_insert_with(Instant::now);
        if vocab.is_eog(token) {
            break FinishReason::Stop;
        }
        let delta = text.push(&vocab.token_to_piece(token, false, None));
        if !delta.is_empty()
            && job
                .tx
                .blocking_send(Ok(GenerationEvent::Delta(delta)))
                .is_err()
        {
            break FinishReason::Cancelled;
        }
        if text.stopped() {
            break FinishReason::Stop;
        }
        if job.tx.is_closed() {
            break FinishReason::Cancelled;
        }
        if progress.generated >= sampling.max_tokens || position + 1 >= shared.n_ctx {
            break FinishReason::Length;
        }
        batch.clear();
        batch
            .add(token, position as i32, &[0], true)
            .map_err(|e| fail("batch", &e))?;
        ctx.decode(&mut batch).map_err(|e| fail("decode", &e))?;
        position += 1;
        logit_index = 0;
    };
    if finish != FinishReason::Cancelled {
        let rest = text.finish();
        if !rest.is_empty() {
            let _ = job.tx.blocking_send(Ok(GenerationEvent::Delta(rest)));
        }
    }
    Ok(progress.usage(shared, job, queued, finish))
}

/// Counters of one generation.
#[derive(Default)]
struct Progress {
    generated: u32,
    logprob_sum: f64,
    first_token_at: Option<Instant>,
}

impl Progress {
    fn usage(
        &self,
        shared: &Shared,
        job: &Job,
        queued: Duration,
        finish_reason: FinishReason,
    ) -> GenerationUsage {
        let first = self.first_token_at.unwrap_or_else(Instant::now);
        GenerationUsage {
            model: shared.model_name.clone(),
            prompt_tokens: job.prompt.len() as u32,
            completion_tokens: self.generated,
            finish_reason,
            mean_logprob: (self.generated > 0)
                .then(|| self.logprob_sum / f64::from(self.generated)),
            time_to_first_token: first.duration_since(job.received),
            queued,
            total: job.received.elapsed(),
        }
    }
}
