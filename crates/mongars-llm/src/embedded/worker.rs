//! One engine thread: owns a llama.cpp context and runs queued jobs.

use super::logprob::logprob;
use super::{Job, Shared};
use crate::text::TextAssembler;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use mongars_core::domain::{FinishReason, GenerationEvent, GenerationUsage, SamplingParams};
use mongars_core::ports::LlmError;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// Tokens fed to llama.cpp per decode call while reading the prompt.
const PREFILL_BATCH: usize = 512;

/// Creating contexts from one model concurrently is unsound in llama.cpp.
pub(crate) static CONTEXT_CREATION: Mutex<()> = Mutex::new(());

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
    // Tokens whose keys and values are in the context, at positions 0.. .
    let mut cached: Vec<LlamaToken> = Vec::new();
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
        let result = generate(&mut ctx, shared, &job, &mut cached);
        if result.is_err() {
            ctx.clear_kv_cache();
            cached.clear();
        }
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

/// How much of `cached` can stay in the context for `prompt`: the common
/// prefix, leaving at least the last prompt token to read again (its logits
/// start the reply).
fn reusable(cached: &[LlamaToken], prompt: &[LlamaToken]) -> usize {
    let common = cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count();
    common.min(prompt.len().saturating_sub(1))
}

/// Read the prompt and generate. The context keeps what it already holds of
/// the prompt's beginning (a conversation's next prompt starts with the
/// previous one), so only the new part is read.
fn generate(
    ctx: &mut LlamaContext<'_>,
    shared: &Shared,
    job: &Job,
    cached: &mut Vec<LlamaToken>,
) -> Result<GenerationUsage, LlmError> {
    let started = Instant::now();
    let queued = started.duration_since(job.received);
    let fail = |what: &str, e: &dyn std::fmt::Display| LlmError::Failed(format!("{what}: {e}"));
    let sampling = &job.request.sampling;
    let prompt = &job.prompt;

    let mut keep = reusable(cached, prompt);
    if ctx.kv_cache_seq_rm(0, Some(keep as u32), None).is_err() {
        ctx.clear_kv_cache();
        keep = 0;
    }
    cached.truncate(keep);
    tracing::debug!(reused = keep, read = prompt.len() - keep, "prompt cache");

    let mut batch = LlamaBatch::new(PREFILL_BATCH, 1);
    for (c, chunk) in prompt[keep..].chunks(PREFILL_BATCH).enumerate() {
        batch.clear();
        for (j, &token) in chunk.iter().enumerate() {
            let pos = keep + c * PREFILL_BATCH + j;
            batch
                .add(token, pos as i32, &[0], pos + 1 == prompt.len())
                .map_err(|e| fail("batch", &e))?;
        }
        ctx.decode(&mut batch).map_err(|e| fail("prefill", &e))?;
        cached.extend_from_slice(chunk);
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
        cached.push(token);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&i| LlamaToken(i)).collect()
    }

    #[test]
    fn reuse_is_the_common_prefix_minus_the_last_prompt_token() {
        assert_eq!(reusable(&t(&[]), &t(&[1, 2, 3])), 0);
        assert_eq!(reusable(&t(&[1, 2, 9, 9]), &t(&[1, 2, 3, 4])), 2);
        assert_eq!(
            reusable(&t(&[1, 2, 3, 4, 5]), &t(&[1, 2, 3])),
            2,
            "same prompt: read the last again"
        );
        assert_eq!(reusable(&t(&[1, 2]), &t(&[1, 2, 3, 4])), 2);
        assert_eq!(reusable(&t(&[7]), &t(&[1])), 0);
    }
}
