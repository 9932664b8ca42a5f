//! The plain llama-cpp-2 decode loop, with nothing of the engine around it:
//! the baseline the engine is measured against (`mongars bench generate`).

use super::EmbeddedBackend;
use super::worker::new_context;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use mongars_core::ports::LlmError;
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
    let current = engine.current();
    let shared = &current.shared;
    let mut ctx =
        new_context(super::load::llama_backend()?, shared, 1).map_err(LlmError::Failed)?;
    let fail = |e: &dyn std::fmt::Display| LlmError::Failed(e.to_string());

    let started = Instant::now();
    let mut batch = LlamaBatch::new(CHUNK, 1);
    let mut index = read_prompt(&mut ctx, &mut batch, prompt)?;
    let mut sampler = LlamaSampler::greedy();
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

/// Most prompt tokens in one decode call of the single-sequence loops.
const CHUNK: usize = 512;

/// Read `prompt` as sequence 0 of `ctx` in chunks of `CHUNK` tokens (the
/// capacity of `batch`); the batch index of the last token's logits.
fn read_prompt(
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    prompt: &[LlamaToken],
) -> Result<i32, LlmError> {
    let fail = |e: &dyn std::fmt::Display| LlmError::Failed(e.to_string());
    for (c, chunk) in prompt.chunks(CHUNK).enumerate() {
        batch.clear();
        for (j, &t) in chunk.iter().enumerate() {
            let pos = c * CHUNK + j;
            batch
                .add(t, pos as i32, &[0], pos + 1 == prompt.len())
                .map_err(|e| fail(&e))?;
        }
        ctx.decode(batch).map_err(|e| fail(&e))?;
    }
    Ok(batch.n_tokens() - 1)
}

/// What one raw batched run measured.
#[derive(Debug, Clone)]
pub struct RawBatchRun {
    /// Per sequence: prompt read and first token sampled.
    pub time_to_first_token: Vec<Duration>,
    /// Per sequence: tokens generated, the first included.
    pub tokens: Vec<u32>,
    /// Per sequence: time from start to its last token.
    pub finished: Vec<Duration>,
}

/// Greedy-decode `prompts` side by side, one sequence each, on a fresh
/// context of the engine's threads: every prompt read in one batch, then one
/// decode call per step for all the sequences still going. The ceiling for
/// the engine's batching, as a minimal llama-cpp-2 program would write it.
pub fn raw_batched_greedy(
    engine: &EmbeddedBackend,
    prompts: &[Vec<LlamaToken>],
    max_tokens: u32,
) -> Result<RawBatchRun, LlmError> {
    let current = engine.current();
    let shared = &current.shared;
    let n = prompts.len().max(1);
    let mut ctx =
        new_context(super::load::llama_backend()?, shared, n).map_err(LlmError::Failed)?;
    let fail = |e: &dyn std::fmt::Display| LlmError::Failed(e.to_string());
    let vocab = shared.model.vocab();

    let started = Instant::now();
    let total: usize = prompts.iter().map(Vec::len).sum();
    let mut batch = LlamaBatch::new(total.max(n), 1);
    for (seq, prompt) in prompts.iter().enumerate() {
        for (pos, &t) in prompt.iter().enumerate() {
            batch
                .add(t, pos as i32, &[seq as i32], pos + 1 == prompt.len())
                .map_err(|e| fail(&e))?;
        }
    }
    ctx.decode(&mut batch).map_err(|e| fail(&e))?;
    let mut samplers: Vec<LlamaSampler> = (0..n).map(|_| LlamaSampler::greedy()).collect();
    let mut at: Vec<Option<i32>> = Vec::with_capacity(n);
    let mut end = 0;
    for prompt in prompts {
        end += prompt.len() as i32;
        at.push(Some(end - 1));
    }
    let mut out = RawBatchRun {
        time_to_first_token: vec![Duration::ZERO; n],
        tokens: vec![0; n],
        finished: vec![Duration::ZERO; n],
    };
    let mut positions: Vec<i32> = prompts.iter().map(|p| p.len() as i32).collect();
    loop {
        let mut next = Vec::new();
        for seq in 0..n {
            let Some(index) = at[seq] else { continue };
            let token = samplers[seq].sample(&ctx, index);
            if out.tokens[seq] == 0 {
                out.time_to_first_token[seq] = started.elapsed();
            }
            out.tokens[seq] += 1;
            out.finished[seq] = started.elapsed();
            if out.tokens[seq] < max_tokens && !vocab.is_eog(token) {
                next.push((seq, token));
            }
        }
        if next.is_empty() {
            return Ok(out);
        }
        batch.clear();
        at = vec![None; n];
        for (i, (seq, token)) in next.into_iter().enumerate() {
            batch
                .add(token, positions[seq], &[seq as i32], true)
                .map_err(|e| fail(&e))?;
            positions[seq] += 1;
            at[seq] = Some(i as i32);
        }
        ctx.decode(&mut batch).map_err(|e| fail(&e))?;
    }
}

/// Log-probability of `answer` as the assistant's reply to `question`, read
/// in one pass on a fresh context (teacher forcing): the sum over the
/// reply's tokens, its end-of-turn included, and their number.
pub fn raw_answer_logprob(
    engine: &EmbeddedBackend,
    question: &str,
    answer: &str,
) -> Result<(f64, usize), LlmError> {
    use mongars_core::domain::{ChatMessage, ChatRole};
    let user = [ChatMessage::new(ChatRole::User, question)];
    let prompt = engine.templated(&user, true)?;
    let whole = engine.templated(
        &[
            user[0].clone(),
            ChatMessage::new(ChatRole::Assistant, answer),
        ],
        false,
    )?;
    if whole.len() <= prompt.len() || whole[..prompt.len()] != prompt[..] {
        return Err(LlmError::Failed(
            "the reply does not extend the prompt's tokens".into(),
        ));
    }
    let current = engine.current();
    let mut ctx =
        new_context(super::load::llama_backend()?, &current.shared, 1).map_err(LlmError::Failed)?;
    let fail = |e: &dyn std::fmt::Display| LlmError::Failed(e.to_string());
    let mut batch = LlamaBatch::new(whole.len(), 1);
    for (pos, &t) in whole.iter().enumerate() {
        batch
            .add(t, pos as i32, &[0], pos + 1 >= prompt.len())
            .map_err(|e| fail(&e))?;
    }
    ctx.decode(&mut batch).map_err(|e| fail(&e))?;
    let mut sum = 0.0;
    for (pos, token) in whole.iter().enumerate().skip(prompt.len()) {
        let logits = ctx.get_logits_ith((pos - 1) as i32);
        sum += super::logprob::logprob(logits, token.0 as usize);
    }
    Ok((sum, whole.len() - prompt.len()))
}

/// What choosing one token costs, in microseconds, on the same logits:
/// llama.cpp's samplers against the engine's (`sampling`, which also
/// gives the token's log-probability).
#[derive(Debug, Clone, Copy)]
pub struct SamplingCost {
    pub vocabulary: usize,
    pub llama_greedy: f64,
    pub engine_greedy: f64,
    /// Top-k 40, top-p 0.9, temperature 0.7, a seeded draw.
    pub llama_random: f64,
    pub engine_random: f64,
}

/// Read `prompt` on a fresh context, then decode `draws` tokens one at a
/// time; after each decode, time choosing the next token from the fresh
/// logits with each sampler (as a decode loop would), and go on with the
/// engine's greedy choice.
pub fn raw_sampling_cost(
    engine: &EmbeddedBackend,
    prompt: &[LlamaToken],
    draws: u32,
) -> Result<SamplingCost, LlmError> {
    use super::sampling::Sampler;
    use mongars_core::domain::SamplingParams;
    let current = engine.current();
    let shared = &current.shared;
    let mut ctx =
        new_context(super::load::llama_backend()?, shared, 1).map_err(LlmError::Failed)?;
    let fail = |e: &dyn std::fmt::Display| LlmError::Failed(e.to_string());
    let mut batch = LlamaBatch::new(CHUNK, 1);
    let mut at = read_prompt(&mut ctx, &mut batch, prompt)?;
    let random = SamplingParams {
        temperature: 0.7,
        top_p: 0.9,
        seed: Some(1),
        ..SamplingParams::greedy(1)
    };
    let mut llama_greedy = LlamaSampler::greedy();
    let mut llama_random = LlamaSampler::chain_simple([
        LlamaSampler::top_k(40),
        LlamaSampler::top_p(0.9, 1),
        LlamaSampler::temp(0.7),
        LlamaSampler::dist(1),
    ]);
    let mut engine_greedy = Sampler::new(&SamplingParams::greedy(1));
    let mut engine_random = Sampler::new(&random);
    let mut spent = [Duration::ZERO; 4];
    let mut checksum = 0i64;
    let start = prompt.len() as i32;
    for position in start..start + draws.max(1) as i32 {
        let t = Instant::now();
        checksum += i64::from(llama_greedy.sample(&ctx, at).0);
        spent[0] += t.elapsed();
        let t = Instant::now();
        let next = engine_greedy.choose(ctx.get_logits_ith(at)).token;
        spent[1] += t.elapsed();
        let t = Instant::now();
        checksum += i64::from(llama_random.sample(&ctx, at).0);
        spent[2] += t.elapsed();
        let t = Instant::now();
        checksum += i64::from(engine_random.choose(ctx.get_logits_ith(at)).token);
        spent[3] += t.elapsed();
        batch.clear();
        batch
            .add(LlamaToken(next as i32), position, &[0], true)
            .map_err(|e| fail(&e))?;
        ctx.decode(&mut batch).map_err(|e| fail(&e))?;
        at = 0;
    }
    std::hint::black_box(checksum);
    let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(draws.max(1));
    Ok(SamplingCost {
        vocabulary: ctx.get_logits_ith(at).len(),
        llama_greedy: us(spent[0]),
        engine_greedy: us(spent[1]),
        llama_random: us(spent[2]),
        engine_random: us(spent[3]),
    })
}
