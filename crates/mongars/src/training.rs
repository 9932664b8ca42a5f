//! The loop `mongars train run` and `mongars bench train` share: steps
//! until the run's end or its time budget, an evaluation every few steps
//! and at the end, and the adapter kept where it was best while passing its
//! gate (held-out perplexity down by the margin, general set within bounds).

use anyhow::Context;
use mongars_config::{Settings, TrainingSettings};
use mongars_core::domain::{ChatMessage, ChatRole};
use mongars_llm::embedded::{EmbeddedBackend, load_backend};
use mongars_train::eval::{Best, Gate, Scores, scores};
use mongars_train::loss::Example;
use mongars_train::model::{Llama, load_gguf};
use mongars_train::trainer::{Progress, Trainer};
use std::time::{Duration, Instant};

/// The embedded engine (one sequence: it only writes chats as tokens) and
/// the same model file dequantised for training.
pub async fn load_models(settings: &Settings) -> anyhow::Result<(EmbeddedBackend, Llama)> {
    let mut cfg = crate::wiring::llm::embedded_config(settings);
    cfg.parallel = 1;
    let path = cfg.model_path.clone();
    let engine = tokio::task::spawn_blocking(move || load_backend(&cfg))
        .await?
        .context("llm.embedded.model_path")?;
    let model = load_gguf(&path).context("llm.embedded.model_path")?;
    Ok((engine, model))
}

/// One exchange as the model's chat template writes it, the reply's
/// tokens (end of turn included) marked as the targets.
pub fn example(engine: &EmbeddedBackend, prompt: &str, response: &str) -> anyhow::Result<Example> {
    let (tokens, at) =
        engine.chat_example(&[ChatMessage::new(ChatRole::User, prompt)], response)?;
    let assistant = (0..tokens.len()).map(|i| i >= at).collect();
    Ok(Example { tokens, assistant })
}

/// The candidate gate of the `[training]` settings.
pub fn gate(t: &TrainingSettings) -> Gate {
    Gate {
        min_improvement: t.min_improvement,
        max_general_regression: t.max_general_regression,
    }
}

/// The data a run sees.
pub struct Sets<'a> {
    pub train: &'a [Example],
    pub held_out: &'a [Example],
    pub general: &'a [Example],
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub before: Scores,
    /// The kept adapter's scores (the last ones when no point passed).
    pub after: Scores,
    /// The step whose adapter was kept, when one passed the gate.
    pub kept_step: Option<usize>,
    pub steps: usize,
    pub seconds: f64,
    pub tokens: usize,
    pub step_seconds: Vec<f64>,
}

impl Outcome {
    pub fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.seconds.max(1e-9)
    }
}

/// Train `run` on `sets` within `budget`, evaluating every `eval_every`
/// steps; `each` sees every step's progress and the run's tokens/s.
pub fn train_gated(
    run: &mut Trainer,
    model: &Llama,
    sets: &Sets,
    gate: Gate,
    eval_every: usize,
    budget: Duration,
    mut each: impl FnMut(&Progress, f64, &Trainer) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let before = scores(model, None, sets.held_out, sets.general)?;
    let mut best = Best::default();
    let started = Instant::now();
    let (mut tokens, mut step_seconds, mut last) = (0usize, Vec::new(), before);
    while !run.finished() && started.elapsed() < budget {
        let t = Instant::now();
        let p = run.step(sets.train)?;
        step_seconds.push(t.elapsed().as_secs_f64());
        tokens += p.tokens;
        each(
            &p,
            tokens as f64 / started.elapsed().as_secs_f64().max(1e-9),
            run,
        )?;
        let end = run.finished() || started.elapsed() >= budget;
        if p.step % eval_every.max(1) == 0 || end {
            last = scores(model, Some(&run.lora), sets.held_out, sets.general)?;
            let kept = best.offer(gate, before, p.step, last, || run.snapshot())?;
            println!(
                "  evaluation at step {}: held-out {:.2}, general {:.2}{}",
                p.step,
                last.held_out,
                last.general,
                if kept { " (kept)" } else { "" }
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let (after, kept_step) = match best.scores {
        Some(s) => {
            run.restore(&best.values)?;
            (s, Some(best.step))
        }
        None => (last, None),
    };
    Ok(Outcome {
        before,
        after,
        kept_step,
        steps: run.steps_done(),
        seconds,
        tokens,
        step_seconds,
    })
}
