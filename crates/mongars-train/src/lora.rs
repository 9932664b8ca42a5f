//! Low-rank adapters: for each targeted projection `W` (`[out, in]`) of a
//! chosen layer, a pair `A` (`[rank, in]`) and `B` (`[out, rank]`) such that
//! the layer computes `x W^T + (alpha / rank) * dropout(x) A^T B^T`. `B`
//! starts at zero, so an untrained adapter leaves the model as it was, and
//! `A` starts uniform (Kaiming's bound for its fan-in), as in the LoRA paper.

use crate::rng::Rng;
use candle_core::{Device, Tensor, Var};
use std::collections::BTreeMap;

/// A projection an adapter can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The tensor's name in a llama GGUF block (`blk.N.<name>.weight`).
    pub fn gguf(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        }
    }

    /// `q`, `k`, `v`, `o`, `gate`, `up` or `down` (settings).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "q" => Target::Q,
            "k" => Target::K,
            "v" => Target::V,
            "o" => Target::O,
            "gate" => Target::Gate,
            "up" => Target::Up,
            "down" => Target::Down,
            _ => return None,
        })
    }
}

/// The shape of an adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraOptions {
    pub rank: usize,
    pub alpha: f32,
    /// Probability of zeroing each input of the low-rank path in training.
    pub dropout: f32,
    pub targets: Vec<Target>,
    /// The blocks adapted (the upper ones train fastest for their effect).
    pub layers: Vec<usize>,
}

impl LoraOptions {
    pub fn scale(&self) -> f64 {
        f64::from(self.alpha) / self.rank as f64
    }
}

/// One trainable pair.
pub struct Pair {
    pub a: Var,
    pub b: Var,
    scale: f64,
    dropout: f32,
}

impl Pair {
    /// The low-rank path's contribution for `x` (`[n, in]`); inputs are
    /// dropped at random when `rng` is given.
    pub fn delta(&self, x: &Tensor, rng: Option<&mut Rng>) -> candle_core::Result<Tensor> {
        let x = match rng {
            Some(rng) if self.dropout > 0.0 => {
                let keep = 1.0 - self.dropout;
                let mask: Vec<f32> = (0..x.elem_count())
                    .map(|_| if rng.unit() < keep { 1.0 / keep } else { 0.0 })
                    .collect();
                (x * Tensor::from_vec(mask, x.shape(), x.device())?)?
            }
            _ => x.clone(),
        };
        x.matmul(&self.a.as_tensor().t()?)?
            .matmul(&self.b.as_tensor().t()?)?
            * self.scale
    }
}

/// The trainable pairs of one adapter, by block and projection.
pub struct Lora {
    pub options: LoraOptions,
    pairs: BTreeMap<(usize, Target), Pair>,
}

impl Lora {
    /// A fresh adapter for a model of `config`: `A` seeded, `B` zero.
    pub fn new(
        config: &crate::model::LlamaConfig,
        options: LoraOptions,
        seed: u64,
    ) -> crate::Result<Self> {
        if options.rank == 0 || options.targets.is_empty() || options.layers.is_empty() {
            return Err(crate::TrainError::Invalid(
                "an adapter needs a rank, targets and layers".into(),
            ));
        }
        if let Some(l) = options.layers.iter().find(|&&l| l >= config.layers) {
            return Err(crate::TrainError::Invalid(format!(
                "layer {l}: the model has {}",
                config.layers
            )));
        }
        let mut rng = Rng::new(seed);
        let device = Device::Cpu;
        let mut pairs = BTreeMap::new();
        for &layer in &options.layers {
            for &t in &options.targets {
                let (inp, out) = config.dims(t);
                let bound = (1.0 / inp as f32).sqrt();
                let a: Vec<f32> = (0..options.rank * inp)
                    .map(|_| rng.symmetric(bound))
                    .collect();
                let a = Var::from_tensor(&Tensor::from_vec(a, (options.rank, inp), &device)?)?;
                let b = Var::zeros((out, options.rank), candle_core::DType::F32, &device)?;
                pairs.insert(
                    (layer, t),
                    Pair {
                        a,
                        b,
                        scale: options.scale(),
                        dropout: options.dropout,
                    },
                );
            }
        }
        Ok(Self { options, pairs })
    }

    pub fn pair(&self, layer: usize, target: Target) -> Option<&Pair> {
        self.pairs.get(&(layer, target))
    }

    /// Every pair, by block then projection.
    pub fn pairs(&self) -> impl Iterator<Item = (usize, Target, &Pair)> {
        self.pairs.iter().map(|(&(l, t), p)| (l, t, p))
    }

    /// The trainable variables, `A` then `B` of each pair.
    pub fn vars(&self) -> Vec<Var> {
        self.pairs
            .values()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect()
    }

    /// Trainable parameters in all.
    pub fn parameters(&self) -> usize {
        self.vars().iter().map(|v| v.elem_count()).sum()
    }
}
