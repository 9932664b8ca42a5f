//! Reading the embedded model's GGUF file into f32 tensors: every weight
//! is dequantised once (candle's quantised matrix product has no backward
//! pass, and LoRA needs none through the frozen weights anyway, but the
//! activations' gradients do flow through them).

use super::{Block, Llama, LlamaConfig};
use crate::TrainError;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};
use std::path::Path;

fn meta<'a>(c: &'a Content, key: &str) -> crate::Result<&'a Value> {
    c.metadata
        .get(key)
        .ok_or_else(|| TrainError::Model(format!("{key} is missing")))
}

fn number(c: &Content, key: &str) -> crate::Result<usize> {
    let v = meta(c, key)?;
    v.to_u32()
        .map(|n| n as usize)
        .or_else(|_| v.to_u64().map(|n| n as usize))
        .map_err(|e| TrainError::Model(format!("{key}: {e}")))
}

/// The shape of the model in a llama-architecture GGUF file, read from its
/// metadata alone (`vocab` is 0: it comes with the embedding matrix).
pub fn gguf_config(path: &Path) -> crate::Result<LlamaConfig> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| TrainError::Model(format!("{}: {e}", path.display())))?;
    gguf_config_of(&mut file, &path.display().to_string())
}

/// [`gguf_config`] of what `reader` holds (`name` in messages).
pub fn gguf_config_of<R: std::io::Read + std::io::Seek>(
    reader: &mut R,
    name: &str,
) -> crate::Result<LlamaConfig> {
    let content = Content::read(reader).map_err(|e| TrainError::Model(format!("{name}: {e}")))?;
    config_of(&content)
}

fn config_of(content: &Content) -> crate::Result<LlamaConfig> {
    let arch = meta(content, "general.architecture")?
        .to_string()
        .map_err(|e| TrainError::Model(e.to_string()))?
        .clone();
    if arch != "llama" {
        return Err(TrainError::Model(format!("architecture {arch}, not llama")));
    }
    let hidden = number(content, "llama.embedding_length")?;
    let heads = number(content, "llama.attention.head_count")?;
    Ok(LlamaConfig {
        vocab: 0,
        hidden,
        intermediate: number(content, "llama.feed_forward_length")?,
        layers: number(content, "llama.block_count")?,
        heads,
        kv_heads: number(content, "llama.attention.head_count_kv").unwrap_or(heads),
        rms_eps: meta(content, "llama.attention.layer_norm_rms_epsilon")?
            .to_f32()
            .map_err(|e| TrainError::Model(e.to_string()))? as f64,
        rope_theta: content
            .metadata
            .get("llama.rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0),
    })
}

/// The model of a llama-architecture GGUF file, dequantised to f32.
pub fn load_gguf(path: &Path) -> crate::Result<Llama> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| TrainError::Model(format!("{}: {e}", path.display())))?;
    let content = Content::read(&mut file)
        .map_err(|e| TrainError::Model(format!("{}: {e}", path.display())))?;
    let config = config_of(&content)?;
    let device = Device::Cpu;
    let mut tensor = |name: &str| -> crate::Result<Tensor> {
        let q = content
            .tensor(&mut file, name, &device)
            .map_err(|e| TrainError::Model(format!("{name}: {e}")))?;
        Ok(q.dequantize(&device)?)
    };
    let embed = tensor("token_embd.weight")?;
    let mut blocks = Vec::with_capacity(config.layers);
    for i in 0..config.layers {
        let mut t = |part: &str| tensor(&format!("blk.{i}.{part}.weight"));
        blocks.push(Block {
            attn_norm: t("attn_norm")?,
            q: t("attn_q")?,
            k: t("attn_k")?,
            v: t("attn_v")?,
            o: t("attn_output")?,
            ffn_norm: t("ffn_norm")?,
            gate: t("ffn_gate")?,
            up: t("ffn_up")?,
            down: t("ffn_down")?,
        });
    }
    let norm = tensor("output_norm.weight")?;
    let output = if content.tensor_infos.contains_key("output.weight") {
        tensor("output.weight")?
    } else {
        embed.clone()
    };
    let config = LlamaConfig {
        vocab: embed.dim(0)?,
        ..config
    };
    Ok(Llama {
        config,
        embed,
        blocks,
        norm,
        output,
        device,
    })
}
