//! The BERT encoder (the all-MiniLM-L6-v2 shape: 6 layers of 384, 12 heads)
//! on plain rows of floats, with mean pooling and L2 normalisation on top.
//!
//! The sentences of a batch are laid end to end, one row per token and no
//! padding: the projections (query, key and value stacked into one) see
//! every token of the batch at once, and attention runs within each
//! sentence. [`super::reference`] is the same model written with candle
//! tensors; the tests hold the two to the same vectors.
//!
//! The activations of a forward pass live in a [`Scratch`] the encoder keeps
//! from one pass to the next (one per pass running at once, each up to
//! [`RETAINED_FLOATS`]), so that a server
//! embedding a few short texts per chat does not ask the heap for megabytes
//! of fresh buffers every time.

use super::math;
use super::proj::{Precision, Proj};
use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use std::sync::{Mutex, PoisonError};

/// Floats of activations kept for the next forward pass (16 MiB: a batch of
/// about a thousand tokens); a larger batch's buffers are freed after it.
pub const RETAINED_FLOATS: usize = 4 << 20;

/// The parts of a BERT `config.json` the encoder needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Refuse what the encoders do not implement.
    pub fn check(&self) -> Result<()> {
        if self.hidden_act != "gelu" {
            candle_core::bail!("unsupported activation {}", self.hidden_act);
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            candle_core::bail!("hidden size is not a multiple of the head count");
        }
        Ok(())
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
    eps: f32,
}

impl Norm {
    fn load(width: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            gamma: vb.get(width, "weight")?.to_vec1()?,
            beta: vb.get(width, "bias")?.to_vec1()?,
            eps: eps as f32,
        })
    }

    fn apply(&self, x: &mut [f32]) {
        math::layer_norm(x, &self.gamma, &self.beta, self.eps);
    }
}

/// The activations of one forward pass, reused by the next.
#[derive(Default)]
struct Scratch {
    /// The hidden states, `[rows, hidden]`, in and out of every layer.
    x: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    attended: Vec<f32>,
    inner: Vec<f32>,
    scores: Vec<f32>,
}

impl Scratch {
    fn floats(&self) -> usize {
        [
            &self.x,
            &self.qkv,
            &self.context,
            &self.attended,
            &self.inner,
            &self.scores,
        ]
        .iter()
        .map(|v| v.capacity())
        .sum()
    }
}

struct Layer {
    qkv: Proj,
    attn_out: Proj,
    attn_norm: Norm,
    inter: Proj,
    out: Proj,
    out_norm: Norm,
}

pub struct Bert {
    words: Vec<f32>,
    positions: Vec<f32>,
    /// Every token is of type 0.
    token_type: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    vocab: usize,
    pub max_positions: usize,
    scratch: Mutex<Vec<Scratch>>,
}

impl Bert {
    pub fn load(vb: VarBuilder, cfg: &BertConfig, precision: Precision) -> Result<Self> {
        cfg.check()?;
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps;
        let e = vb.pp("embeddings");
        let table = |rows: usize, name: &str| -> Result<Vec<f32>> {
            e.pp(name)
                .get((rows, h), "weight")?
                .flatten_all()?
                .to_vec1()
        };
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let parts = [
                (h, a.pp("self.query")),
                (h, a.pp("self.key")),
                (h, a.pp("self.value")),
            ];
            layers.push(Layer {
                qkv: Proj::stacked(h, &parts, precision)?,
                attn_out: Proj::load(h, h, a.pp("output.dense"), precision)?,
                attn_norm: Norm::load(h, eps, a.pp("output.LayerNorm"))?,
                inter: Proj::load(
                    h,
                    cfg.intermediate_size,
                    l.pp("intermediate.dense"),
                    precision,
                )?,
                out: Proj::load(cfg.intermediate_size, h, l.pp("output.dense"), precision)?,
                out_norm: Norm::load(h, eps, l.pp("output.LayerNorm"))?,
            });
        }
        let token_types = table(cfg.type_vocab_size, "token_type_embeddings")?;
        Ok(Self {
            words: table(cfg.vocab_size, "word_embeddings")?,
            positions: table(cfg.max_position_embeddings, "position_embeddings")?,
            token_type: token_types[..h].to_vec(),
            emb_norm: Norm::load(h, eps, e.pp("LayerNorm"))?,
            layers,
            hidden: h,
            heads: cfg.num_attention_heads,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_position_embeddings,
            scratch: Mutex::default(),
        })
    }

    /// Mean-pooled, unit-length sentence vectors, one per token sequence.
    pub fn embed(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        // Each pass takes kept buffers (one set per pass running at once,
        // so concurrent feeders do not churn the heap) and gives them back.
        let taken = self
            .scratch
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut s = taken.unwrap_or_default();
        let result = self.embed_in(batch, &mut s);
        if s.floats() <= RETAINED_FLOATS {
            self.scratch
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(s);
        }
        result
    }

    fn embed_in(&self, batch: &[&[u32]], s: &mut Scratch) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let rows: usize = batch.iter().map(|s| s.len()).sum();
        s.x.clear();
        for seq in batch {
            if seq.len() > self.max_positions {
                candle_core::bail!("{} tokens, more than {}", seq.len(), self.max_positions);
            }
            for (at, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    candle_core::bail!("token {id} is outside the vocabulary");
                }
                let word = &self.words[id * h..(id + 1) * h];
                let place = &self.positions[at * h..(at + 1) * h];
                s.x.extend(
                    word.iter()
                        .zip(place)
                        .zip(&self.token_type)
                        .map(|((w, p), t)| w + p + t),
                );
            }
        }
        self.emb_norm.apply(&mut s.x);
        let lengths: Vec<usize> = batch.iter().map(|s| s.len()).collect();
        for layer in &self.layers {
            self.layer(layer, s, rows, &lengths);
        }
        let mut out = Vec::with_capacity(batch.len());
        let mut at = 0;
        for &n in &lengths {
            out.push(math::mean_unit(&s.x[at * h..(at + n) * h], h));
            at += n;
        }
        Ok(out)
    }

    /// One encoder layer over the hidden states in `s.x`, in place.
    fn layer(&self, l: &Layer, s: &mut Scratch, rows: usize, lengths: &[usize]) {
        l.qkv.forward_into(&s.x, rows, &mut s.qkv);
        self.attention(&s.qkv, lengths, &mut s.context, &mut s.scores);
        l.attn_out.forward_into(&s.context, rows, &mut s.attended);
        for (a, v) in s.attended.iter_mut().zip(&s.x) {
            *a += v;
        }
        l.attn_norm.apply(&mut s.attended);
        l.inter.forward_into(&s.attended, rows, &mut s.inner);
        math::gelu(&mut s.inner);
        l.out.forward_into(&s.inner, rows, &mut s.x);
        for (a, v) in s.x.iter_mut().zip(&s.attended) {
            *a += v;
        }
        l.out_norm.apply(&mut s.x);
    }

    /// Scaled dot-product attention of every head within each sequence;
    /// `qkv` holds each token's query, key and value side by side. The
    /// result goes to `context`; `scores` is room for one row of weights.
    fn attention(
        &self,
        qkv: &[f32],
        lengths: &[usize],
        context: &mut Vec<f32>,
        scores: &mut Vec<f32>,
    ) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        context.clear();
        context.resize(qkv.len() / 3, 0.0);
        let mut start = 0;
        for &n in lengths {
            let token = |i: usize, part: usize, head: usize| {
                let at = (start + i) * 3 * h + part * h + head * d;
                &qkv[at..at + d]
            };
            for head in 0..self.heads {
                for i in 0..n {
                    let q = token(i, 0, head);
                    scores.clear();
                    scores.extend((0..n).map(|j| {
                        let k = token(j, 1, head);
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale
                    }));
                    math::softmax(scores);
                    let at = (start + i) * h + head * d;
                    let out = &mut context[at..at + d];
                    for (j, p) in scores.iter().enumerate() {
                        for (o, v) in out.iter_mut().zip(token(j, 2, head)) {
                            *o += p * v;
                        }
                    }
                }
            }
            start += n;
        }
    }
}

/// Load the weights of a safetensors file onto the CPU.
pub fn var_builder(path: &std::path::Path) -> Result<VarBuilder<'static>> {
    let device = Device::Cpu;
    let tensors = candle_core::safetensors::load(path, &device)?;
    Ok(VarBuilder::from_tensors(tensors, DType::F32, &device))
}

/// Sentence vectors as rows of plain floats.
pub fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    t.to_dtype(DType::F32)?.to_vec2::<f32>()
}
