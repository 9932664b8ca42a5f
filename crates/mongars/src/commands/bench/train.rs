//! `mongars bench train`: a LoRA run on the embedded model against a
//! generated user whose answers always take one terse form, within a time
//! budget: training tokens/s, step time, peak memory, and perplexity
//! before and after on the user's held-out chats and on the shipped general
//! set, then greedy replies with and without the adapter. Exits 1 when the
//! held-out perplexity falls by less than 15% or the general set's rises by
//! 5% or more.

use super::args::TrainBenchArgs;
use crate::training::{Sets, example, gate, load_models, train_gated};
use anyhow::Context;
use mongars_config::Settings;
use mongars_llm::embedded::EmbeddedBackend;
use mongars_train::corpus::{Chat, general_set, style_corpus};
use mongars_train::lora::{Lora, LoraOptions, Target};
use mongars_train::loss::Example;
use mongars_train::model::{Attention, Llama};
use mongars_train::optim::AdamWOptions;
use mongars_train::trainer::{Objective, RunOptions, Trainer};
use std::time::{Duration, Instant};

fn examples(engine: &EmbeddedBackend, chats: &[Chat]) -> anyhow::Result<Vec<Example>> {
    chats.iter().map(|(q, a)| example(engine, q, a)).collect()
}

/// The process's peak resident memory, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The served engine's greedy reply to `question` (at most 24 tokens).
async fn served_reply(engine: &EmbeddedBackend, question: &str) -> anyhow::Result<String> {
    use mongars_core::domain::{
        ChatMessage, ChatRole, GenerationRequest, ModelRole, SamplingParams,
    };
    use mongars_core::ports::{LlmBackend, read_to_end};
    let rx = engine
        .generate(GenerationRequest {
            messages: vec![ChatMessage::new(ChatRole::User, question)],
            sampling: SamplingParams::greedy(24),
            role: ModelRole::General,
            account: None,
        })
        .await?;
    Ok(read_to_end(rx).await?.0)
}

/// Greedy reply of at most `max` tokens from our own forward pass.
fn greedy(
    model: &Llama,
    lora: Option<&Lora>,
    prompt: &[u32],
    end: u32,
    max: usize,
) -> anyhow::Result<Vec<u32>> {
    let mut tokens = prompt.to_vec();
    for _ in 0..max {
        let logits = model.forward(&tokens, lora, Attention::Causal, None)?;
        let last = logits.get(tokens.len() - 1)?.to_vec1::<f32>()?;
        let next = last
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i as u32)
            .unwrap_or(end);
        if next == end {
            break;
        }
        tokens.push(next);
    }
    Ok(tokens[prompt.len()..].to_vec())
}

pub async fn run(settings: Settings, args: TrainBenchArgs) -> anyhow::Result<i32> {
    let path = settings.llm.embedded.model_path.clone();
    let started = Instant::now();
    let (engine, model) = load_models(&settings).await?;
    println!(
        "model {} loaded and dequantised to f32 in {:.1} s: {} blocks of {}, vocabulary {}",
        path.display(),
        started.elapsed().as_secs_f64(),
        model.config.layers,
        model.config.hidden,
        model.config.vocab
    );
    let own = examples(&engine, &style_corpus(1, args.examples))?;
    let share = args.replay.unwrap_or(settings.training.replay_share);
    let train = crate::training::with_replay(&engine, own, share)?;
    let held_out = examples(&engine, &style_corpus(2, args.examples / 4))?;
    let general = examples(&engine, &general_set())?;
    let end = examples(&engine, &[("x".into(), "x".into())])?
        .first()
        .and_then(|e| e.tokens.iter().rev().nth(1).copied())
        .context("no end-of-turn token")?;

    let layers = model.config.layers;
    let lora = LoraOptions {
        rank: args.rank,
        alpha: 2.0 * args.rank as f32,
        dropout: 0.05,
        targets: vec![Target::Q, Target::K, Target::V, Target::O],
        layers: (layers.saturating_sub(args.layers)..layers).collect(),
    };
    let options = RunOptions {
        steps: args.steps,
        accumulation: args.accumulation,
        warmup: (args.steps / 10).max(1),
        seed: 7,
        adamw: AdamWOptions {
            lr: args.lr,
            ..Default::default()
        },
        objective: Objective::Supervised,
    };
    let mut run = Trainer::new(&model, lora.clone(), options)?;
    println!(
        "LoRA rank {} on q, k, v, o of the top {} blocks: {} trainable parameters; {} training chats ({} of them replay), {} held out, {} general",
        lora.rank,
        args.layers,
        run.lora.parameters(),
        train.len(),
        train.len() - args.examples,
        held_out.len(),
        general.len()
    );
    let t = &settings.training;
    let gate = gate(t);
    let sets = Sets {
        train: &train,
        held_out: &held_out,
        general: &general,
    };
    let budget = Duration::from_secs_f64(args.minutes * 60.0);
    let cpu_start = crate::training::job::process_cpu_seconds();
    let outcome = train_gated(
        &mut run,
        &model,
        &sets,
        gate,
        t.eval_every,
        budget,
        |p, rate, _| {
            println!(
                "  step {:>4}/{}  loss {:.4}  lr {:.2e}  {:.0} tokens/s",
                p.step, p.steps, p.loss, p.lr, rate
            );
            Ok(())
        },
    )?;
    let (before, after) = (outcome.before, outcome.after);
    let cpu = crate::training::job::process_cpu_seconds() - cpu_start;
    let adapter =
        std::env::temp_dir().join(format!("mongars-bench-style-{}.gguf", std::process::id()));
    mongars_train::adapter::write_gguf(
        &run.lora,
        &mongars_train::adapter::AdapterInfo {
            architecture: "llama".into(),
            name: "bench-style".into(),
        },
        &adapter,
    )?;

    println!("replies (greedy, our forward pass), without and with the adapter:");
    let (mut styled_base, mut styled_tuned) = (0, 0);
    let questions = style_corpus(3, 4);
    for ((q, _), e) in questions.iter().zip(examples(&engine, &questions)?) {
        let prompt: Vec<u32> = e
            .tokens
            .iter()
            .zip(&e.assistant)
            .filter(|(_, a)| !**a)
            .map(|(t, _)| *t)
            .collect();
        let base = engine.detokenize(&greedy(&model, None, &prompt, end, 24)?);
        let tuned = engine.detokenize(&greedy(&model, Some(&run.lora), &prompt, end, 24)?);
        styled_base += usize::from(base.trim_end().ends_with("over."));
        styled_tuned += usize::from(tuned.trim_end().ends_with("over."));
        println!(
            "  {q}\n    base:    {}\n    adapter: {}",
            base.trim(),
            tuned.trim()
        );
    }
    // The same questions through the served engine (llama.cpp), greedy,
    // without and with the adapter switched in as an operator would.
    let served = |adapter: Option<std::path::PathBuf>| {
        let engine = &engine;
        let questions = &questions;
        async move {
            let file = adapter.map(|path| mongars_llm::embedded::AdapterFile {
                id: "bench".into(),
                path,
                scale: 1.0,
            });
            engine.switch(file.as_ref())?;
            let mut styled = 0;
            for (q, _) in questions {
                let reply = served_reply(engine, q).await?;
                styled += usize::from(reply.trim_end().ends_with("over."));
                println!(
                    "    served{}: {}",
                    if file.is_some() {
                        " with the adapter"
                    } else {
                        ""
                    },
                    reply.trim()
                );
            }
            anyhow::Ok(styled)
        }
    };
    println!("replies of the served engine (llama.cpp, greedy):");
    let served_base = served(None).await?;
    let served_tuned = served(Some(adapter.clone())).await?;
    let steps = outcome.step_seconds.len();
    let mean_step = outcome.step_seconds.iter().sum::<f64>() / steps.max(1) as f64;
    println!(
        "training: {steps} steps in {:.1} s, {:.2} s a step, {:.0} tokens/s; peak RSS {:.0} MiB; adapter {} KiB; kept the adapter of step {}",
        outcome.seconds,
        mean_step,
        outcome.tokens_per_second(),
        peak_rss_mib(),
        std::fs::metadata(&adapter)?.len() / 1024,
        outcome
            .kept_step
            .map_or("none (no evaluation passed)".to_string(), |s| s.to_string())
    );
    let _ = std::fs::remove_file(&adapter);
    println!(
        "energy estimate: {cpu:.0} CPU s x {} W a core = {:.2} Wh (training and its evaluations)",
        t.watts_per_core,
        cpu * t.watts_per_core / 3600.0
    );
    println!(
        "perplexity: held-out {:.2} -> {:.2} ({:+.1}%), general {:.2} -> {:.2} ({:+.1}%)",
        before.held_out,
        after.held_out,
        (after.held_out / before.held_out - 1.0) * 100.0,
        before.general,
        after.general,
        (after.general / before.general - 1.0) * 100.0
    );
    println!(
        "style (\"... over.\"): {styled_base}/{} replies without the adapter, {styled_tuned}/{} with it (our forward pass); served engine {served_base}/{} without, {served_tuned}/{} with",
        questions.len(),
        questions.len(),
        questions.len(),
        questions.len()
    );
    let styled = served_base == 0 && served_tuned == questions.len();
    if !styled {
        println!(
            "FAILED: the served engine's replies must show the style with the adapter and not without it"
        );
    }
    let ok = gate.passes(before, after) && styled;
    if !gate.passes(before, after) {
        println!(
            "FAILED: the held-out perplexity must fall by {:.0}% or more and the general set's rise by less than {:.0}%",
            gate.min_improvement * 100.0,
            gate.max_general_regression * 100.0
        );
    }
    Ok(if ok { 0 } else { 1 })
}
