//! A gated run that can stop at any step and continue later: its scores,
//! the best adapter so far and its clock are kept beside the trainer's
//! checkpoint, so that a paused run resumes where it was, gate and all.

use super::Sets;
use anyhow::Context;
use mongars_train::eval::{Best, Gate, Scores, scores_for};
use mongars_train::model::Llama;
use mongars_train::trainer::{Objective, Progress, Trainer};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

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

/// Why [`Gated::train`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every step was taken or the budget was spent.
    Done,
    /// The caller asked for a pause after a step.
    Paused,
}

/// The state of a gated run between steps.
pub struct Gated {
    pub gate: Gate,
    pub eval_every: usize,
    /// Training time allowed, over all its stretches.
    pub budget: Duration,
    /// What the scores measure (perplexity of replies, or masked).
    pub objective: Objective,
    before: Option<Scores>,
    last: Option<Scores>,
    best: Best,
    tokens: usize,
    seconds: f64,
    step_seconds: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    before: Option<(f64, f64)>,
    last: Option<(f64, f64)>,
    best_step: usize,
    best: Option<(f64, f64)>,
    tokens: usize,
    seconds: f64,
    step_seconds: Vec<f64>,
}

fn pair(s: Scores) -> (f64, f64) {
    (s.held_out, s.general)
}

fn scores_of((held_out, general): (f64, f64)) -> Scores {
    Scores { held_out, general }
}

impl Gated {
    pub fn new(gate: Gate, eval_every: usize, budget: Duration) -> Self {
        Self {
            gate,
            eval_every: eval_every.max(1),
            budget,
            objective: Objective::Supervised,
            before: None,
            last: None,
            best: Best::default(),
            tokens: 0,
            seconds: 0.0,
            step_seconds: Vec::new(),
        }
    }

    /// Scores measured for `objective` (MNTP runs are gated on masked
    /// perplexity).
    pub fn with_objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// Tokens trained on so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// The scores before training, once measured.
    pub fn before(&self) -> Option<Scores> {
        self.before
    }

    /// Keep the state in `dir` (beside the trainer's checkpoint).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let saved = Saved {
            before: self.before.map(pair),
            last: self.last.map(pair),
            best_step: self.best.step,
            best: self.best.scores.map(pair),
            tokens: self.tokens,
            seconds: self.seconds,
            step_seconds: self.step_seconds.clone(),
        };
        if self.best.scores.is_some() {
            self.best.save_values(&dir.join("best.safetensors"))?;
        }
        let json = dir.join("gated.json");
        let tmp = json.with_extension("part");
        std::fs::write(&tmp, serde_json::to_vec(&saved)?)?;
        std::fs::rename(&tmp, &json)?;
        Ok(())
    }

    /// The state saved in `dir`, with this run's gate and budget.
    pub fn load(
        gate: Gate,
        eval_every: usize,
        budget: Duration,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let json = dir.join("gated.json");
        let saved: Saved = serde_json::from_slice(
            &std::fs::read(&json).with_context(|| json.display().to_string())?,
        )
        .with_context(|| json.display().to_string())?;
        let mut g = Self::new(gate, eval_every, budget);
        g.before = saved.before.map(scores_of);
        g.last = saved.last.map(scores_of);
        g.tokens = saved.tokens;
        g.seconds = saved.seconds;
        g.step_seconds = saved.step_seconds;
        if let Some(best) = saved.best {
            let values = Best::load_values(&dir.join("best.safetensors"))?;
            g.best = Best {
                step: saved.best_step,
                scores: Some(scores_of(best)),
                values,
            };
        }
        Ok(g)
    }

    /// Train until the run is finished, the budget is spent or `each`
    /// (which sees every step's progress and the tokens/s) answers `true`
    /// to ask for a pause.
    pub fn train(
        &mut self,
        run: &mut Trainer,
        model: &Llama,
        sets: &Sets,
        mut each: impl FnMut(&Progress, f64, &Trainer) -> anyhow::Result<bool>,
    ) -> anyhow::Result<Stop> {
        let before = match self.before {
            Some(b) => b,
            None => {
                let b = scores_for(self.objective, model, None, sets.held_out, sets.general)?;
                self.before = Some(b);
                b
            }
        };
        let stretch = Instant::now();
        let spent = self.seconds;
        let elapsed = |spent: f64| spent + stretch.elapsed().as_secs_f64();
        while !run.finished() && elapsed(spent) < self.budget.as_secs_f64() {
            let t = Instant::now();
            let p = run.step(sets.train)?;
            self.step_seconds.push(t.elapsed().as_secs_f64());
            self.tokens += p.tokens;
            self.seconds = elapsed(spent);
            let end = run.finished() || self.seconds >= self.budget.as_secs_f64();
            if p.step % self.eval_every == 0 || end {
                let last = scores_for(
                    self.objective,
                    model,
                    Some(&run.lora),
                    sets.held_out,
                    sets.general,
                )?;
                self.last = Some(last);
                let kept = self
                    .best
                    .offer(self.gate, before, p.step, last, || run.snapshot())?;
                tracing::info!(
                    step = p.step,
                    held_out = last.held_out,
                    general = last.general,
                    kept,
                    "training evaluation"
                );
            }
            self.seconds = elapsed(spent);
            let rate = self.tokens as f64 / self.seconds.max(1e-9);
            if each(&p, rate, run)? && !run.finished() {
                return Ok(Stop::Paused);
            }
        }
        Ok(Stop::Done)
    }

    /// The run's result; the kept adapter (if any passed) is put back in
    /// `run`.
    pub fn finish(self, run: &mut Trainer, model: &Llama, sets: &Sets) -> anyhow::Result<Outcome> {
        let before = match self.before {
            Some(b) => b,
            None => scores_for(self.objective, model, None, sets.held_out, sets.general)?,
        };
        let last = match self.last {
            Some(l) => l,
            None => scores_for(
                self.objective,
                model,
                Some(&run.lora),
                sets.held_out,
                sets.general,
            )?,
        };
        let (after, kept_step) = match self.best.scores {
            Some(s) => {
                run.restore(&self.best.values)?;
                (s, Some(self.best.step))
            }
            None => (last, None),
        };
        Ok(Outcome {
            before,
            after,
            kept_step,
            steps: run.steps_done(),
            seconds: self.seconds,
            tokens: self.tokens,
            step_seconds: self.step_seconds,
        })
    }
}

/// Train `run` on `sets` within `budget` in one go, evaluating every
/// `eval_every` steps; `each` sees every step's progress and the tokens/s.
pub fn train_gated(
    run: &mut Trainer,
    model: &Llama,
    sets: &Sets,
    gate: Gate,
    eval_every: usize,
    budget: Duration,
    mut each: impl FnMut(&Progress, f64, &Trainer) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    let mut g = Gated::new(gate, eval_every, budget).with_objective(run.options().objective);
    g.train(run, model, sets, |p, rate, run| {
        each(p, rate, run).map(|()| false)
    })?;
    g.finish(run, model, sets)
}
