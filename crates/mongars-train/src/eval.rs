//! Perplexity: `exp` of the mean negative log-likelihood per target token,
//! over a set of examples (the assistant's tokens of each chat).

use crate::lora::Lora;
use crate::loss::{Example, sft_loss};
use crate::model::Llama;

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
