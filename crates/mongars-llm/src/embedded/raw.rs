//! The plain llama-cpp-2 decode loop, with nothing of the engine around it:
//! the baseline the engine is measured against (`mongars bench generate`).

use super::EmbeddedBackend;
use super::worker::CONTEXT_CREATION;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use mongars_core::ports::LlmError;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// What one raw run measured.
#[derive(Debug, Clone, Copy)]
pub struct RawRun {
    /// Prompt read and first token sampled.
    pub time_to_first_token: Duration,
    /// Tokens generated, the first included.
    pub tokens: u32,
    /// Time from the first token to the last.
    pub decode: Duration,
}

/// Greedy-decode up to `max_tokens` after `prompt` on a fresh context with
/// `threads` threads, exactly as a minimal llama-cpp-2 program would.
pub fn raw_greedy_decode(
    engine: &EmbeddedBackend,
    prompt: &[LlamaToken],
    max_tokens: u32,
) -> Result<RawRun, LlmError> {
    let shared = &engine.shared;
    let threads = i32::try_from(shared.threads).unwrap_or(1);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(shared.n_ctx as u32))
        .with_n_batch(512)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let backend = super::load::llama_backend()?;
    let mut ctx = {
        let _guard = CONTEXT_CREATION.lock().unwrap_or_else(|p| p.into_inner());
        shared.model.new_context(backend, params)
    }
    .map_err(|e| LlmError::Failed(e.to_string()))?;
    let fail = |e: &dyn std::fmt::Display| LlmError::Failed(e.to_string());

    let started = Instant::now();
    let mut batch = LlamaBatch::new(512, 1);
    for (c, chunk) in prompt.chunks(512).enumerate() {
        batch.clear();
        for (j, &t) in chunk.iter().enumerate() {
            let pos = c * 512 + j;
            batch
                .add(t, pos as i32, &[0], pos + 1 == prompt.len())
                .map_err(|e| fail(&e))?;
        }
        ctx.decode(&mut batch).map_err(|e| fail(&e))?;
    }
    let mut sampler = LlamaSampler::greedy();
    let mut index = batch.n_tokens() - 1;
    let mut position = prompt.len() as i32;
    let mut token = sampler.sample(&ctx, index);
    let time_to_first_token = started.elapsed();
    let first_at = Instant::now();
    let mut tokens = 1;
    while tokens < max_tokens && !shared.model.vocab().is_eog(token) {
        batch.clear();
        batch
            .add(token, position, &[0], true)
            .map_err(|e| fail(&e))?;
        ctx.decode(&mut batch).map_err(|e| fail(&e))?;
        position += 1;
        index = 0;
        token = sampler.sample(&ctx, index);
        tokens += 1;
    }
    Ok(RawRun {
        time_to_first_token,
        tokens,
        decode: first_at.elapsed(),
    })
}
