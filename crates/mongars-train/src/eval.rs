//! Perplexity: `exp` of the mean negative log-likelihood per target token,
//! over a set of examples (the assistant's tokens of each chat).

use crate::lora::Lora;
use crate::loss::{Example, mntp_eval, sft_loss};
use crate::model::Llama;
use crate::rng::Rng;
use crate::trainer::Objective;

/// The perplexity of `examples` under the model with `lora` (or without).
pub fn perplexity(model: &Llama, lora: Option<&Lora>, examples: &[Example]) -> crate::Result<f64> {
    let (mut nll, mut count) = (0f64, 0f64);
    for e in examples {
        let targets = e.assistant[1..].iter().filter(|a| **a).count() as f64;
        if targets == 0.0 {
            continue;
        }
        let loss = sft_loss(model, lora, e, None)?.to_scalar::<f32>()?;
        nll += f64::from(loss) * targets;
        count += targets;
    }
    if count == 0.0 {
        return Err(crate::TrainError::Invalid("nothing to evaluate".into()));
    }
    Ok((nll / count).exp())
}

/// Perplexities of the held-out share of a user's data and of the general
/// set, at one point of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub held_out: f64,
    pub general: f64,
}

/// When an adapter may become a candidate: the held-out perplexity fell by
/// at least `min_improvement` (a share) and the general set's rose by less
/// than `max_general_regression`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    pub min_improvement: f64,
    pub max_general_regression: f64,
}

impl Gate {
    pub fn passes(&self, before: Scores, after: Scores) -> bool {
        1.0 - after.held_out / before.held_out >= self.min_improvement
            && after.general / before.general - 1.0 < self.max_general_regression
    }
}

/// The best point of a run that passed its gate: evaluated every few
/// steps, the adapter is kept where its held-out perplexity was lowest
/// while the general set stayed within bounds (training on one user's
/// style drifts away from everything else if left to run).
#[derive(Debug, Default)]
pub struct Best {
    pub step: usize,
    pub scores: Option<Scores>,
    pub values: Vec<candle_core::Tensor>,
}

impl Best {
    /// Keep `values` at `step` if `scores` pass `gate` and beat the best so far.
    pub fn offer(
        &mut self,
        gate: Gate,
        before: Scores,
        step: usize,
        scores: Scores,
        values: impl FnOnce() -> crate::Result<Vec<candle_core::Tensor>>,
    ) -> crate::Result<bool> {
        let better = self.scores.is_none_or(|b| scores.held_out < b.held_out);
        if gate.passes(before, scores) && better {
            self.values = values()?;
            self.scores = Some(scores);
            self.step = step;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Best {
    /// Keep the kept adapter's values in a safetensors file.
    pub fn save_values(&self, path: &std::path::Path) -> crate::Result<()> {
        let tensors: std::collections::HashMap<String, candle_core::Tensor> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("var.{i}"), t.clone()))
            .collect();
        let tmp = path.with_extension("part");
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// Values written by [`Best::save_values`], in order.
    pub fn load_values(path: &std::path::Path) -> crate::Result<Vec<candle_core::Tensor>> {
        let tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)?;
        (0..tensors.len())
            .map(|i| {
                tensors.get(&format!("var.{i}")).cloned().ok_or_else(|| {
                    crate::TrainError::Invalid(format!("{} is incomplete", path.display()))
                })
            })
            .collect()
    }
}

/// The masked perplexity of `examples` under MNTP: `exp` of the mean
/// negative log-likelihood at masked positions, the masks drawn from
/// `seed` (the same masks for every evaluation of a run).
pub fn masked_perplexity(
    model: &Llama,
    lora: Option<&Lora>,
    examples: &[Example],
    mask_token: u32,
    ratio: f32,
    seed: u64,
) -> crate::Result<f64> {
    let mut rng = Rng::new(seed);
    let (mut nll, mut count) = (0f64, 0f64);
    for e in examples {
        let (loss, masked) = mntp_eval(model, lora, &e.tokens, mask_token, ratio, &mut rng)?;
        nll += f64::from(loss) * masked as f64;
        count += masked as f64;
    }
    if count == 0.0 {
        return Err(crate::TrainError::Invalid("nothing to evaluate".into()));
    }
    Ok((nll / count).exp())
}

/// Both scores of a model with `lora` for `objective`: perplexity of the
/// replies for supervised runs, masked perplexity for MNTP.
pub fn scores_for(
    objective: Objective,
    model: &Llama,
    lora: Option<&Lora>,
    held_out: &[Example],
    general: &[Example],
) -> crate::Result<Scores> {
    match objective {
        Objective::Supervised => scores(model, lora, held_out, general),
        Objective::Mntp { mask_token, ratio } => Ok(Scores {
            held_out: masked_perplexity(model, lora, held_out, mask_token, ratio, 17)?,
            general: masked_perplexity(model, lora, general, mask_token, ratio, 17)?,
        }),
    }
}

/// Both perplexities of a model with `lora`.
pub fn scores(
    model: &Llama,
    lora: Option<&Lora>,
    held_out: &[Example],
    general: &[Example],
) -> crate::Result<Scores> {
    Ok(Scores {
        held_out: perplexity(model, lora, held_out)?,
        general: perplexity(model, lora, general)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_and_the_best_point() {
        let gate = Gate {
            min_improvement: 0.15,
            max_general_regression: 0.05,
        };
        let before = Scores {
            held_out: 100.0,
            general: 10.0,
        };
        let s = |h, g| Scores {
            held_out: h,
            general: g,
        };
        assert!(gate.passes(before, s(85.0, 10.4)));
        assert!(!gate.passes(before, s(86.0, 10.0)), "not enough better");
        assert!(
            !gate.passes(before, s(50.0, 10.5)),
            "general set worse by 5%"
        );
        let mut best = Best::default();
        assert!(
            best.offer(gate, before, 10, s(80.0, 10.0), || Ok(vec![]))
                .unwrap()
        );
        assert!(
            !best
                .offer(gate, before, 20, s(40.0, 12.0), || Ok(vec![]))
                .unwrap()
        );
        assert!(
            !best
                .offer(gate, before, 30, s(82.0, 10.0), || Ok(vec![]))
                .unwrap()
        );
        assert!(
            best.offer(gate, before, 40, s(70.0, 10.1), || Ok(vec![]))
                .unwrap()
        );
        assert_eq!(best.step, 40);
    }
}
