//! Adapters as GGUF LoRA files, the format llama.cpp loads
//! (`llama_adapter_lora_init`): `general.type = adapter`, `adapter.type =
//! lora`, `adapter.lora.alpha`, and per adapted projection
//! `blk.N.<name>.weight.lora_a` (`[rank, in]`) and `.lora_b` (`[out, rank]`)
//! in f32. llama.cpp scales the product by `alpha / rank`, as training did.

use crate::lora::Lora;
use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use std::path::Path;

/// What identifies an adapter besides its tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterInfo {
    /// The base model's architecture (llama.cpp refuses a mismatch).
    pub architecture: String,
    pub name: String,
}

/// Write `lora` to `path` (through a temporary file, renamed into place).
pub fn write_gguf(lora: &Lora, info: &AdapterInfo, path: &Path) -> crate::Result<()> {
    let mut tensors = Vec::new();
    for (layer, target, pair) in lora.pairs() {
        let base = format!("blk.{layer}.{}.weight", target.gguf());
        let a = QTensor::quantize(pair.a.as_tensor(), GgmlDType::F32)?;
        let b = QTensor::quantize(pair.b.as_tensor(), GgmlDType::F32)?;
        tensors.push((format!("{base}.lora_a"), a));
        tensors.push((format!("{base}.lora_b"), b));
    }
    let metadata = [
        (
            "general.architecture",
            Value::String(info.architecture.clone()),
        ),
        ("general.type", Value::String("adapter".into())),
        ("general.name", Value::String(info.name.clone())),
        ("adapter.type", Value::String("lora".into())),
        ("adapter.lora.alpha", Value::F32(lora.options.alpha)),
    ];
    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tmp = path.with_extension("gguf.part");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        gguf_file::write(&mut file, &meta, &refs)?;
        std::io::Write::flush(&mut file)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
