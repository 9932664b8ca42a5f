//! Training on this machine: the loop `mongars train run`, `mongars bench
//! train` and the server's runs share ([`gated`]: steps until the run's end
//! or its time budget, an evaluation every few steps, the adapter kept where
//! it was best while passing its gate, and a pause at any step), the
//! server's runs of dataset versions ([`job`]) and the scheduler that runs
//! them only while the node is idle ([`scheduler`]).

pub mod gated;
pub mod job;
pub mod scheduler;

pub use gated::{Gated, Outcome, Stop, train_gated};

use anyhow::Context;
use mongars_config::{Settings, TrainingSettings};
use mongars_core::domain::{ChatMessage, ChatRole};
use mongars_llm::embedded::{EmbeddedBackend, load_backend};
use mongars_train::eval::Gate;
use mongars_train::lora::{LoraOptions, Target};
use mongars_train::loss::Example;
use mongars_train::model::{Llama, load_gguf};
use mongars_train::optim::AdamWOptions;
use mongars_train::trainer::{Objective, RunOptions};

/// The embedded engine with one sequence: training only uses it to write
/// chats as tokens.
pub async fn load_engine(settings: &Settings) -> anyhow::Result<EmbeddedBackend> {
    let mut cfg = crate::wiring::llm::embedded_config(settings);
    cfg.parallel = 1;
    tokio::task::spawn_blocking(move || load_backend(&cfg))
        .await?
        .context("llm.embedded.model_path")
}

/// The embedded engine and the same model file dequantised for training.
pub async fn load_models(settings: &Settings) -> anyhow::Result<(EmbeddedBackend, Llama)> {
    let engine = load_engine(settings).await?;
    let path = settings.llm.embedded.model_path.clone();
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

/// `train` followed by enough exchanges of the shipped replay set to make
/// `share` of the whole (see `training.replay_share`).
pub fn with_replay(
    engine: &EmbeddedBackend,
    mut train: Vec<Example>,
    share: f64,
) -> anyhow::Result<Vec<Example>> {
    let replay = mongars_train::corpus::replay_set();
    let n = mongars_train::corpus::replay_count(train.len(), share, replay.len());
    for (q, a) in replay.iter().take(n) {
        train.push(example(engine, q, a)?);
    }
    Ok(train)
}

/// The LoRA of the `[training]` settings on the top blocks of a model of
/// `layers` blocks.
pub fn lora_options(t: &TrainingSettings, layers: usize) -> LoraOptions {
    LoraOptions {
        rank: t.rank,
        alpha: t.alpha,
        dropout: t.dropout,
        targets: t.targets.iter().filter_map(|x| Target::parse(x)).collect(),
        layers: (layers.saturating_sub(t.layers)..layers).collect(),
    }
}

/// A run of `steps` steps with the `[training]` settings.
pub fn run_options(t: &TrainingSettings, steps: usize, objective: Objective) -> RunOptions {
    let steps = steps.max(1);
    RunOptions {
        steps,
        accumulation: t.accumulation,
        warmup: (steps / 10).max(1),
        seed: t.seed,
        adamw: AdamWOptions {
            lr: t.learning_rate,
            weight_decay: t.weight_decay,
            ..Default::default()
        },
        objective,
    }
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
