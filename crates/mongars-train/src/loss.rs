//! Training objectives.
//!
//! Supervised next-token prediction counts only the positions whose next
//! token is the assistant's (the prompt and the user's words are context,
//! not targets). MNTP (masked next-token prediction, as in LLM2Vec) masks a
//! share of the tokens, lets every position see every other, and predicts
//! each masked token from the output at the position before it.

use crate::lora::Lora;
use crate::model::{Attention, Llama};
use crate::rng::Rng;
use candle_core::{D, Tensor};

/// Mean negative log-likelihood of `targets[i]` under `logits[i]` over the
/// positions where `weights[i]` is 1 (weights are 0 or 1).
pub fn masked_nll(logits: &Tensor, targets: &[u32], weights: &[f32]) -> crate::Result<Tensor> {
    let n = targets.len();
    let counted: f32 = weights.iter().sum();
    if counted == 0.0 {
        return Err(crate::TrainError::Invalid(
            "no position to learn from".into(),
        ));
    }
    let device = logits.device();
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let idx = Tensor::from_slice(targets, (n, 1), device)?;
    let picked = logp.gather(&idx, 1)?.squeeze(1)?;
    let w = Tensor::from_slice(weights, n, device)?;
    Ok(((picked * w)?.sum_all()? * (-1.0 / f64::from(counted)))?)
}

/// One supervised example: the whole chat's tokens and, per token, whether
/// it is the assistant's (and so a target).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub tokens: Vec<u32>,
    pub assistant: Vec<bool>,
}

/// The supervised loss of `example`: position `i` predicts token `i + 1`
/// when that token is the assistant's.
pub fn sft_loss(
    model: &Llama,
    lora: Option<&Lora>,
    example: &Example,
    rng: Option<&mut Rng>,
) -> crate::Result<Tensor> {
    let n = example.tokens.len();
    if n < 2 || example.assistant.len() != n {
        return Err(crate::TrainError::Invalid(
            "an example needs two tokens or more".into(),
        ));
    }
    let logits = model.forward(&example.tokens[..n - 1], lora, Attention::Causal, rng)?;
    let weights: Vec<f32> = example.assistant[1..]
        .iter()
        .map(|&a| if a { 1.0 } else { 0.0 })
        .collect();
    masked_nll(&logits, &example.tokens[1..], &weights)
}

/// `tokens` with a `ratio` of positions (never the first, at least one)
/// replaced by `mask_token`, and the weight of each next-token target (1 at
/// the masked ones).
fn mask(
    tokens: &[u32],
    mask_token: u32,
    ratio: f32,
    rng: &mut Rng,
) -> crate::Result<(Vec<u32>, Vec<f32>)> {
    let n = tokens.len();
    if n < 2 {
        return Err(crate::TrainError::Invalid(
            "MNTP needs two tokens or more".into(),
        ));
    }
    let mut input = tokens.to_vec();
    let mut weights = vec![0f32; n - 1];
    for i in 1..n {
        if rng.unit() < ratio {
            input[i] = mask_token;
            weights[i - 1] = 1.0;
        }
    }
    if weights.iter().all(|w| *w == 0.0) {
        let i = 1 + rng.below(n - 1);
        input[i] = mask_token;
        weights[i - 1] = 1.0;
    }
    Ok((input, weights))
}

/// The MNTP loss of `tokens` as evaluated: masks drawn from `rng`, no
/// dropout. Returns the mean loss and how many positions were masked.
pub fn mntp_eval(
    model: &Llama,
    lora: Option<&Lora>,
    tokens: &[u32],
    mask_token: u32,
    ratio: f32,
    rng: &mut Rng,
) -> crate::Result<(f32, usize)> {
    let (input, weights) = mask(tokens, mask_token, ratio, rng)?;
    let n = tokens.len();
    let logits = model.forward(&input, lora, Attention::Bidirectional, None)?;
    let logits = logits.narrow(0, 0, n - 1)?;
    let loss = masked_nll(&logits, &tokens[1..], &weights)?.to_scalar::<f32>()?;
    Ok((loss, weights.iter().filter(|w| **w > 0.0).count()))
}

/// The MNTP loss of `tokens`: a `ratio` of positions (never the first) are
/// replaced by `mask_token`; the output at `i - 1` predicts the original
/// token at a masked `i`.
pub fn mntp_loss(
    model: &Llama,
    lora: Option<&Lora>,
    tokens: &[u32],
    mask_token: u32,
    ratio: f32,
    rng: &mut Rng,
) -> crate::Result<Tensor> {
    let n = tokens.len();
    let (input, weights) = mask(tokens, mask_token, ratio, rng)?;
    let logits = model.forward(&input, lora, Attention::Bidirectional, Some(rng))?;
    let logits = logits.narrow(0, 0, n - 1)?;
    masked_nll(&logits, &tokens[1..], &weights)
}
