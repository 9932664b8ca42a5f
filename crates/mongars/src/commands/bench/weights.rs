//! `mongars bench generate`, weights part: the model file as it is against
//! its matrices widened to Q8_0 (`llm.embedded.weights`), on the same raw
//! llama-cpp-2 loops and threads: one reply's decode rate, the time to read
//! a long prompt, four replies decoded as one batch; then what the widening
//! changes in the model's answers: the log-probability of the shipped
//! general set's answers, and greedy replies to its questions.

use super::{ms, pct};
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::domain::{ChatMessage, ChatRole, GenerationRequest, SamplingParams};
use mongars_core::ports::{LlmBackend, read_to_end};
use mongars_llm::embedded::{
    EmbeddedBackend, EmbeddedConfig, Weights, WeightsOutcome, load_backend, raw_answer_logprob,
    raw_batched_greedy, raw_greedy_decode,
};
use std::sync::Arc;

/// Greedy replies compared between the two (questions of the general set).
const REPLIES: usize = 12;
const REPLY_TOKENS: u32 = 32;

#[derive(Default)]
struct Figures {
    decode: Vec<f64>,
    prompt_ms: Vec<f64>,
    batch4: Vec<f64>,
}

pub async fn run(settings: &Settings, tokens: u32, runs: u32) -> anyhow::Result<()> {
    let base = crate::wiring::llm::embedded_config(settings);
    let threads = base.threads;
    let dir = crate::wiring::llm::widened_dir(settings);
    let file = load(EmbeddedConfig {
        weights: Weights::AsFile,
        ..base.clone()
    })
    .await?;
    let wide = load(EmbeddedConfig {
        weights: Weights::Q8_0 { dir },
        ..base
    })
    .await?;
    println!();
    if !matches!(
        wide.weights_outcome(),
        WeightsOutcome::Widened | WeightsOutcome::Reused
    ) {
        println!(
            "weights: the model file is not in a format that is widened ({:?}); nothing to compare",
            wide.weights_outcome()
        );
        return Ok(());
    }
    let general = mongars_train::corpus::general_set();
    let long: String = general
        .iter()
        .take(8)
        .map(|(_, a)| a.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let short = |i: usize| {
        vec![ChatMessage::new(
            ChatRole::User,
            format!("Story {i}: write about a lighthouse keeper and a message in a bottle."),
        )]
    };
    let long_prompt = file.prompt_tokens(&[ChatMessage::new(ChatRole::User, long)])?;
    let (mut f, mut w) = (Figures::default(), Figures::default());
    for run in 0..runs.max(1) {
        let order = if run % 2 == 0 {
            [(&file, &mut f), (&wide, &mut w)]
        } else {
            [(&wide, &mut w), (&file, &mut f)]
        };
        for (engine, figures) in order {
            let one = engine.prompt_tokens(&short(run as usize))?;
            let four = (0..4)
                .map(|i| engine.prompt_tokens(&short(100 * run as usize + i)))
                .collect::<Result<Vec<_>, _>>()?;
            let (e, lp) = (engine.clone(), long_prompt.clone());
            let (single, read, batch) = tokio::task::spawn_blocking(move || {
                let single = raw_greedy_decode(&e, &one, tokens)?;
                let read = raw_greedy_decode(&e, &lp, 1)?;
                let batch = raw_batched_greedy(&e, &four, tokens)?;
                Ok::<_, mongars_core::ports::LlmError>((single, read, batch))
            })
            .await??;
            figures
                .decode
                .push(f64::from(single.tokens - 1) / single.decode.as_secs_f64());
            figures.prompt_ms.push(ms(read.time_to_first_token));
            let all: u32 = batch.tokens.iter().sum();
            let last = batch.finished.iter().max().copied().unwrap_or_default();
            figures.batch4.push(f64::from(all) / last.as_secs_f64());
        }
    }
    println!(
        "weights: the model file against its matrices widened to Q8_0 (llm.embedded.weights), raw \
         llama-cpp-2 loops, {threads} threads, {runs} runs each alternating, medians"
    );
    println!("{:<44} {:>10} {:>10} {:>8}", "", "file", "Q8_0", "ratio");
    let row = |name: &str, a: &[f64], b: &[f64], prec: usize| {
        let (a, b) = (pct(a, 50.0), pct(b, 50.0));
        println!("{name:<44} {a:>10.prec$} {b:>10.prec$} {:>8.3}", b / a);
    };
    row("decode tokens/s, one reply", &f.decode, &w.decode, 1);
    let read = format!("prompt of {} tokens read, ms", long_prompt.len());
    row(&read, &f.prompt_ms, &w.prompt_ms, 0);
    row("4 replies in one batch, tokens/s", &f.batch4, &w.batch4, 1);
    quality(&file, &wide, &general).await
}

/// What the widening changes in the model's answers.
async fn quality(
    file: &Arc<EmbeddedBackend>,
    wide: &Arc<EmbeddedBackend>,
    general: &[(String, String)],
) -> anyhow::Result<()> {
    let (a, b, set) = (file.clone(), wide.clone(), general.to_vec());
    let (lf, lw, n) = tokio::task::spawn_blocking(move || {
        let (mut lf, mut lw, mut n) = (0.0, 0.0, 0);
        for (q, ans) in &set {
            let (sf, k) = raw_answer_logprob(&a, q, ans)?;
            let (sw, _) = raw_answer_logprob(&b, q, ans)?;
            (lf, lw, n) = (lf + sf, lw + sw, n + k);
        }
        Ok::<_, mongars_core::ports::LlmError>((lf, lw, n))
    })
    .await??;
    let n = n.max(1) as f64;
    println!(
        "general set's answers ({} exchanges, {n} tokens): mean log-probability {:.4} file, {:.4} \
         Q8_0 ({:+.4}); perplexity {:.3} and {:.3}",
        general.len(),
        lf / n,
        lw / n,
        (lw - lf) / n,
        (-lf / n).exp(),
        (-lw / n).exp()
    );
    let (mut same, mut same_start) = (0, 0);
    for (q, _) in general.iter().take(REPLIES) {
        let (x, y) = (reply(file, q).await?, reply(wide, q).await?);
        same += usize::from(x == y);
        let start = |s: &str| s.split_whitespace().take(8).collect::<Vec<_>>().join(" ");
        same_start += usize::from(start(&x) == start(&y));
    }
    println!(
        "greedy replies to {REPLIES} of its questions ({REPLY_TOKENS} tokens): word for word the \
         same in {same}, the first 8 words in {same_start}"
    );
    Ok(())
}

async fn reply(engine: &EmbeddedBackend, question: &str) -> anyhow::Result<String> {
    let req = GenerationRequest::classified(
        vec![ChatMessage::new(ChatRole::User, question)],
        SamplingParams::greedy(REPLY_TOKENS),
    );
    Ok(read_to_end(engine.generate(req).await?).await?.0)
}

async fn load(cfg: EmbeddedConfig) -> anyhow::Result<Arc<EmbeddedBackend>> {
    Ok(Arc::new(
        tokio::task::spawn_blocking(move || load_backend(&cfg))
            .await?
            .context("llm.embedded.model_path")?,
    ))
}
