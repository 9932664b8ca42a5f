//! Settings of on-device LoRA training (`mongars train run`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSettings {
    /// LoRA rank of each adapted projection.
    pub rank: usize,
    /// LoRA alpha: the low-rank path is scaled by alpha / rank.
    pub alpha: f32,
    /// Share of the low-rank path's inputs dropped in training.
    pub dropout: f32,
    /// Projections adapted: any of q, k, v, o, gate, up, down.
    pub targets: Vec<String>,
    /// How many of the model's top blocks are adapted.
    pub layers: usize,
    /// Peak learning rate (warm-up, then cosine to a tenth).
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Optimiser steps of a run.
    pub steps: usize,
    /// Samples per optimiser step.
    pub accumulation: usize,
    /// Wall-clock budget of a run's training, in minutes.
    pub max_minutes: f64,
    /// Seed of the data order, dropout and the adapter's start.
    pub seed: u64,
    /// Evaluate every this many steps; the adapter is kept where it was
    /// best while passing the gate below.
    pub eval_every: usize,
    /// Share of samples held out for evaluation (by a seeded hash of each).
    pub held_out: f64,
    /// A run is a candidate only when held-out perplexity falls by at
    /// least this share...
    pub min_improvement: f64,
    /// ...and the shipped general set's rises by less than this share.
    pub max_general_regression: f64,
    /// Share of each run's training examples taken from the shipped replay
    /// set of everyday exchanges, so that learning one user's style does
    /// not unlearn the rest (0: none).
    pub replay_share: f64,
    /// Run queued training runs in the server (only while it is idle).
    pub scheduler: bool,
    /// The server is idle after this many minutes without a chat.
    pub idle_minutes: f64,
    /// ...and while the machine's CPU use is below this percentage
    /// (100: whatever the load).
    pub idle_cpu_percent: f64,
    /// Power drawn per busy core, for the energy estimate of each run.
    pub watts_per_core: f64,
}

pub(crate) fn validate(s: &crate::Settings, check: &mut dyn FnMut(bool, &str, String)) {
    let t = &s.training;
    check(
        (1..=256).contains(&t.rank),
        "training.rank",
        "must be between 1 and 256".into(),
    );
    check(t.alpha > 0.0, "training.alpha", "must be positive".into());
    check(
        (0.0..0.9).contains(&t.dropout),
        "training.dropout",
        "must be at least 0 and below 0.9".into(),
    );
    let known = ["q", "k", "v", "o", "gate", "up", "down"];
    check(
        !t.targets.is_empty() && t.targets.iter().all(|x| known.contains(&x.as_str())),
        "training.targets",
        format!("must name one or more of {}", known.join(", ")),
    );
    check(
        t.layers >= 1,
        "training.layers",
        "must be at least 1".into(),
    );
    check(
        t.learning_rate > 0.0 && t.learning_rate < 1.0,
        "training.learning_rate",
        "must be above 0 and below 1".into(),
    );
    check(
        (0.0..1.0).contains(&t.weight_decay),
        "training.weight_decay",
        "must be at least 0 and below 1".into(),
    );
    check(t.steps >= 1, "training.steps", "must be at least 1".into());
    check(
        (1..=256).contains(&t.accumulation),
        "training.accumulation",
        "must be between 1 and 256".into(),
    );
    check(
        t.max_minutes > 0.0,
        "training.max_minutes",
        "must be positive".into(),
    );
    check(
        t.held_out > 0.0 && t.held_out < 0.5,
        "training.held_out",
        "must be above 0 and below 0.5".into(),
    );
    check(
        (0.0..1.0).contains(&t.min_improvement),
        "training.min_improvement",
        "must be at least 0 and below 1".into(),
    );
    check(
        t.max_general_regression > 0.0,
        "training.max_general_regression",
        "must be positive".into(),
    );
    check(
        (0.0..0.9).contains(&t.replay_share),
        "training.replay_share",
        "must be at least 0 and below 0.9".into(),
    );
    check(
        (0.0..=10_080.0).contains(&t.idle_minutes),
        "training.idle_minutes",
        "must be between 0 and 10080 (a week)".into(),
    );
    check(
        t.idle_cpu_percent > 0.0 && t.idle_cpu_percent <= 100.0,
        "training.idle_cpu_percent",
        "must be above 0 and at most 100".into(),
    );
    check(
        (0.0..=1000.0).contains(&t.watts_per_core),
        "training.watts_per_core",
        "must be between 0 and 1000".into(),
    );
}
