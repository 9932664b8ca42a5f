//! The training loop: optimiser steps of `accumulation` examples each, in a
//! seeded order that is reshuffled every pass over the data, with the
//! learning-rate schedule of [`crate::optim`]; checkpoints hold everything
//! a run needs to continue exactly where it stopped (adapter, optimiser
//! moments, step, position in the data).
//!
//! The loop never looks at a clock: the caller decides between steps
//! whether to go on (a time budget, a pause for a chat), so the same seed
//! gives the same adapter however the run was interrupted.

use crate::lora::{Lora, LoraOptions};
use crate::loss::{Example, mntp_loss, sft_loss};
use crate::model::Llama;
use crate::optim::{AdamW, AdamWOptions, learning_rate};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// What the model learns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Next-token prediction on the assistant's tokens (ChatML chats).
    Supervised,
    /// Masked next-token prediction with bidirectional attention.
    Mntp { mask_token: u32, ratio: f32 },
}

/// A run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOptions {
    /// Optimiser steps in all.
    pub steps: usize,
    /// Examples per optimiser step (their gradients are averaged).
    pub accumulation: usize,
    pub warmup: usize,
    pub seed: u64,
    pub adamw: AdamWOptions,
    pub objective: Objective,
}

/// Where a run stands after a step.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Steps done (1 after the first).
    pub step: usize,
    pub steps: usize,
    /// Mean loss of the step's examples.
    pub loss: f32,
    /// Tokens the step read.
    pub tokens: usize,
    pub lr: f64,
}

pub struct Trainer<'m> {
    model: &'m Llama,
    pub lora: Lora,
    opt: AdamW,
    options: RunOptions,
    step: usize,
    /// Examples consumed so far.
    cursor: usize,
    /// The current pass's order of the data, and which pass of how many
    /// examples it is for.
    order: (usize, usize, Vec<usize>),
}

impl<'m> Trainer<'m> {
    /// A new run of a fresh adapter.
    pub fn new(model: &'m Llama, lora: LoraOptions, options: RunOptions) -> crate::Result<Self> {
        if options.accumulation == 0 || options.steps == 0 {
            return Err(crate::TrainError::Invalid(
                "a run needs steps and examples per step".into(),
            ));
        }
        let lora = Lora::new(&model.config, lora, options.seed)?;
        let opt = AdamW::new(lora.vars(), options.adamw.clone())?;
        Ok(Self {
            model,
            lora,
            opt,
            options,
            step: 0,
            cursor: 0,
            order: (usize::MAX, 0, Vec::new()),
        })
    }

    /// The settings the run was made with.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    pub fn steps_done(&self) -> usize {
        self.step
    }

    pub fn finished(&self) -> bool {
        self.step >= self.options.steps
    }

    /// The example at position `i` of the run's endless, seeded order: each
    /// pass over the data is shuffled anew (once per pass).
    fn example<'d>(&mut self, data: &'d [Example], i: usize) -> &'d Example {
        let pass = i / data.len();
        if (self.order.0, self.order.1) != (pass, data.len()) {
            let mut order: Vec<usize> = (0..data.len()).collect();
            let mut rng =
                Rng::new(self.options.seed ^ (pass as u64).wrapping_mul(0xA076_1D64_78BD_642F));
            for k in (1..order.len()).rev() {
                order.swap(k, rng.below(k + 1));
            }
            self.order = (pass, data.len(), order);
        }
        &data[self.order.2[i % data.len()]]
    }

    /// One optimiser step over the next examples of `data`.
    pub fn step(&mut self, data: &[Example]) -> crate::Result<Progress> {
        if data.is_empty() {
            return Err(crate::TrainError::Invalid("no training data".into()));
        }
        let k = self.options.accumulation;
        let mut total: Option<candle_core::backprop::GradStore> = None;
        let (mut loss_sum, mut tokens) = (0f32, 0usize);
        for _ in 0..k {
            let example = self.example(data, self.cursor);
            // Dropout and masking draw from a generator of this example's
            // own: a resumed run draws exactly what it would have.
            let mut rng = Rng::new(
                self.options
                    .seed
                    .wrapping_add((self.cursor as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            );
            self.cursor += 1;
            let loss = match self.options.objective {
                Objective::Supervised => {
                    sft_loss(self.model, Some(&self.lora), example, Some(&mut rng))?
                }
                Objective::Mntp { mask_token, ratio } => mntp_loss(
                    self.model,
                    Some(&self.lora),
                    &example.tokens,
                    mask_token,
                    ratio,
                    &mut rng,
                )?,
            };
            loss_sum += loss.to_scalar::<f32>()?;
            tokens += example.tokens.len();
            let grads = (loss / k as f64)?.backward()?;
            total = Some(match total {
                None => grads,
                Some(mut sum) => {
                    for var in self.lora.vars() {
                        if let Some(g) = grads.get(var.as_tensor()) {
                            let added = match sum.get(var.as_tensor()) {
                                Some(s) => (s + g)?,
                                None => g.clone(),
                            };
                            sum.insert(var.as_tensor(), added);
                        }
                    }
                    sum
                }
            });
        }
        let lr = learning_rate(
            self.step,
            self.options.steps,
            self.options.warmup,
            self.options.adamw.lr,
        );
        if let Some(grads) = &total {
            self.opt.step(grads, lr)?;
        }
        self.step += 1;
        Ok(Progress {
            step: self.step,
            steps: self.options.steps,
            loss: loss_sum / k as f32,
            tokens,
            lr,
        })
    }

    /// The adapter's current values (to go back to them with
    /// [`Self::restore`], say the best ones seen by an evaluation).
    pub fn snapshot(&self) -> crate::Result<Vec<Tensor>> {
        Ok(self
            .lora
            .vars()
            .iter()
            .map(|v| v.as_tensor().copy())
            .collect::<candle_core::Result<_>>()?)
    }

    /// Put back values taken by [`Self::snapshot`].
    pub fn restore(&self, values: &[Tensor]) -> crate::Result<()> {
        let vars = self.lora.vars();
        if vars.len() != values.len() {
            return Err(crate::TrainError::Invalid(
                "a snapshot of another adapter".into(),
            ));
        }
        for (var, value) in vars.iter().zip(values) {
            var.set(value)?;
        }
        Ok(())
    }

    /// Everything needed to continue, in one safetensors file.
    pub fn save_checkpoint(&self, path: &Path) -> crate::Result<()> {
        let mut tensors = HashMap::new();
        for (i, (var, (m, v))) in self.lora.vars().iter().zip(&self.opt.moments).enumerate() {
            tensors.insert(format!("var.{i}"), var.as_tensor().clone());
            tensors.insert(format!("m.{i}"), m.clone());
            tensors.insert(format!("v.{i}"), v.clone());
        }
        let state = [self.step as u32, self.cursor as u32, self.opt.t as u32];
        tensors.insert("state".into(), Tensor::new(&state, &Device::Cpu)?);
        let tmp = path.with_extension("part");
        candle_core::safetensors::save(&tensors, &tmp)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// A run continued from `path`, with the settings it was started with.
    pub fn resume(
        model: &'m Llama,
        lora: LoraOptions,
        options: RunOptions,
        path: &Path,
    ) -> crate::Result<Self> {
        let mut run = Self::new(model, lora, options)?;
        let saved = candle_core::safetensors::load(path, &Device::Cpu)?;
        let get = |name: &str| {
            saved
                .get(name)
                .cloned()
                .ok_or_else(|| crate::TrainError::Invalid(format!("checkpoint lacks {name}")))
        };
        for (i, (var, moments)) in run
            .lora
            .vars()
            .iter()
            .zip(run.opt.moments.iter_mut())
            .enumerate()
        {
            let value = get(&format!("var.{i}"))?;
            if value.shape() != var.shape() {
                return Err(crate::TrainError::Invalid(
                    "the checkpoint is of another adapter shape".into(),
                ));
            }
            var.set(&value)?;
            *moments = (get(&format!("m.{i}"))?, get(&format!("v.{i}"))?);
        }
        let state = get("state")?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let [step, cursor, t] = state[..] else {
            return Err(crate::TrainError::Invalid("bad checkpoint state".into()));
        };
        run.step = step as usize;
        run.cursor = cursor as usize;
        run.opt.t = u64::from(t);
        Ok(run)
    }
}
