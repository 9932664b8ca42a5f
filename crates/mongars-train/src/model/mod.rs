//! The llama model as the server runs it, in f32 and differentiable.
//!
//! [`Llama::forward`] returns next-token logits for one token sequence,
//! with the LoRA pairs of a [`crate::lora::Lora`] added to the projections
//! they target. Attention is causal for supervised training and
//! bidirectional for MNTP. Every operation has a backward pass in candle
//! 0.11: softmax is `exp / sum`, RMS norm is spelled out, rotary embeddings
//! use `rope_i_slow` (the interleaved form of llama.cpp's GGUF layout).

mod load;

use crate::lora::{Lora, Target};
use crate::rng::Rng;
use candle_core::{D, DType, Device, Tensor};

pub use load::{gguf_config, gguf_config_of, load_gguf};

/// The shape of a llama model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab: usize,
    pub hidden: usize,
    pub intermediate: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub rms_eps: f64,
    pub rope_theta: f32,
}

impl LlamaConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Input and output widths of a projection.
    pub fn dims(&self, target: Target) -> (usize, usize) {
        let kv = self.kv_heads * self.head_dim();
        match target {
            Target::Q | Target::O => (self.hidden, self.hidden),
            Target::K | Target::V => (self.hidden, kv),
            Target::Gate | Target::Up => (self.hidden, self.intermediate),
            Target::Down => (self.intermediate, self.hidden),
        }
    }
}

/// One block's frozen weights, `[out, in]` as in GGUF.
pub struct Block {
    pub attn_norm: Tensor,
    pub q: Tensor,
    pub k: Tensor,
    pub v: Tensor,
    pub o: Tensor,
    pub ffn_norm: Tensor,
    pub gate: Tensor,
    pub up: Tensor,
    pub down: Tensor,
}

impl Block {
    pub fn weight(&self, target: Target) -> &Tensor {
        match target {
            Target::Q => &self.q,
            Target::K => &self.k,
            Target::V => &self.v,
            Target::O => &self.o,
            Target::Gate => &self.gate,
            Target::Up => &self.up,
            Target::Down => &self.down,
        }
    }
}

/// A llama model with frozen f32 weights.
pub struct Llama {
    pub config: LlamaConfig,
    pub embed: Tensor,
    pub blocks: Vec<Block>,
    pub norm: Tensor,
    /// The output projection (the embedding matrix when tied).
    pub output: Tensor,
    pub device: Device,
}

/// Whether a position may attend to later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attention {
    /// Each position sees itself and what precedes it (generation, SFT).
    Causal,
    /// Every position sees every other (MNTP, embedding adapters).
    Bidirectional,
}

impl Llama {
    /// A model of `config` with random weights (tests and benches).
    pub fn random(config: LlamaConfig, seed: u64) -> crate::Result<Self> {
        let device = Device::Cpu;
        let mut rng = Rng::new(seed);
        let mut matrix = |rows: usize, cols: usize| -> crate::Result<Tensor> {
            let scale = 1.0 / (cols as f32).sqrt();
            let v: Vec<f32> = (0..rows * cols).map(|_| rng.normal() * scale).collect();
            Ok(Tensor::from_vec(v, (rows, cols), &device)?)
        };
        let ones = |n: usize| Tensor::ones(n, DType::F32, &device);
        let mut blocks = Vec::with_capacity(config.layers);
        for _ in 0..config.layers {
            let w = |t: Target, m: &mut dyn FnMut(usize, usize) -> crate::Result<Tensor>| {
                let (i, o) = config.dims(t);
                m(o, i)
            };
            blocks.push(Block {
                attn_norm: ones(config.hidden)?,
                q: w(Target::Q, &mut matrix)?,
                k: w(Target::K, &mut matrix)?,
                v: w(Target::V, &mut matrix)?,
                o: w(Target::O, &mut matrix)?,
                ffn_norm: ones(config.hidden)?,
                gate: w(Target::Gate, &mut matrix)?,
                up: w(Target::Up, &mut matrix)?,
                down: w(Target::Down, &mut matrix)?,
            });
        }
        let embed = matrix(config.vocab, config.hidden)?;
        Ok(Self {
            norm: ones(config.hidden)?,
            output: embed.clone(),
            embed,
            blocks,
            config,
            device,
        })
    }

    /// Logits `[len, vocab]` for `tokens`, with `lora` applied (dropout on
    /// its inputs when `rng` is given).
    pub fn forward(
        &self,
        tokens: &[u32],
        lora: Option<&Lora>,
        attention: Attention,
        mut rng: Option<&mut Rng>,
    ) -> crate::Result<Tensor> {
        let c = &self.config;
        let n = tokens.len();
        if n == 0 {
            return Err(crate::TrainError::Invalid("no tokens".into()));
        }
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(crate::TrainError::Invalid(format!(
                "token {t} outside the vocabulary"
            )));
        }
        let ids = Tensor::from_slice(tokens, n, &self.device)?;
        let mut x = self.embed.index_select(&ids, 0)?;
        let (cos, sin) = rope_tables(c, n, &self.device)?;
        let mask = match attention {
            Attention::Causal => Some(causal_mask(n, &self.device)?),
            Attention::Bidirectional => None,
        };
        for (layer, block) in self.blocks.iter().enumerate() {
            let mut proj = |t: Target, input: &Tensor| -> crate::Result<Tensor> {
                let base = input.matmul(&block.weight(t).t()?)?;
                match lora.and_then(|l| l.pair(layer, t)) {
                    Some(pair) => Ok((base + pair.delta(input, rng.as_deref_mut())?)?),
                    None => Ok(base),
                }
            };
            let h = rms_norm(&x, &block.attn_norm, c.rms_eps)?;
            let q = heads(&proj(Target::Q, &h)?, c.heads, c.head_dim())?;
            let k = heads(&proj(Target::K, &h)?, c.kv_heads, c.head_dim())?;
            let v = heads(&proj(Target::V, &h)?, c.kv_heads, c.head_dim())?;
            let q = candle_nn::rotary_emb::rope_i_slow(&q, &cos, &sin)?;
            let k = candle_nn::rotary_emb::rope_i_slow(&k, &cos, &sin)?;
            let group = c.heads / c.kv_heads;
            let (k, v) = (repeat_kv(&k, group)?, repeat_kv(&v, group)?);
            let scale = 1.0 / (c.head_dim() as f64).sqrt();
            let mut scores = (q.matmul(&k.t()?)? * scale)?;
            if let Some(m) = &mask {
                scores = scores.broadcast_add(m)?;
            }
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let mixed = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .reshape((1, n, c.hidden))?
                .squeeze(0)?;
            x = (x + proj(Target::O, &mixed)?)?;
            let h = rms_norm(&x, &block.ffn_norm, c.rms_eps)?;
            let gate = proj(Target::Gate, &h)?;
            let up = proj(Target::Up, &h)?;
            let act = (silu(&gate)? * up)?;
            x = (x + proj(Target::Down, &act)?)?;
        }
        let x = rms_norm(&x, &self.norm, c.rms_eps)?;
        Ok(x.matmul(&self.output.t()?)?)
    }
}

/// `x / sqrt(mean(x^2) + eps) * w`, row by row, from differentiable parts.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let ms = (x.sqr()?.mean_keepdim(D::Minus1)? + eps)?;
    x.broadcast_div(&ms.sqrt()?)?.broadcast_mul(w)
}

/// `x * sigmoid(x)` from differentiable parts.
fn silu(x: &Tensor) -> candle_core::Result<Tensor> {
    x / (x.neg()?.exp()? + 1.0)?
}

/// `[n, heads * dim]` to `[1, heads, n, dim]`.
fn heads(x: &Tensor, heads: usize, dim: usize) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    x.reshape((1, n, heads, dim))?.transpose(1, 2)?.contiguous()
}

/// Each key/value head repeated for the `group` query heads that share it.
fn repeat_kv(x: &Tensor, group: usize) -> candle_core::Result<Tensor> {
    if group == 1 {
        return Ok(x.clone());
    }
    let (b, h, n, d) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, h, group, n, d))?
        .reshape((b, h * group, n, d))
}

/// Cosines and sines `[n, dim / 2]` of the rotary embedding.
fn rope_tables(
    c: &LlamaConfig,
    n: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = c.head_dim() / 2;
    let inv: Vec<f32> = (0..half)
        .map(|i| 1.0 / c.rope_theta.powf(2.0 * i as f32 / c.head_dim() as f32))
        .collect();
    let mut cos = Vec::with_capacity(n * half);
    let mut sin = Vec::with_capacity(n * half);
    for p in 0..n {
        for f in &inv {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    Ok((
        Tensor::from_vec(cos, (n, half), device)?,
        Tensor::from_vec(sin, (n, half), device)?,
    ))
}

/// 0 on and below the diagonal, a large negative number above it.
fn causal_mask(n: usize, device: &Device) -> candle_core::Result<Tensor> {
    let v: Vec<f32> = (0..n * n)
        .map(|i| if i % n > i / n { -1e9 } else { 0.0 })
        .collect();
    Tensor::from_vec(v, (n, n), device)
}
