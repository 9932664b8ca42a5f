//! The trainer's model against llama.cpp on the real embedded model (run
//! `make models` first): the dequantised f32 forward predicts what
//! llama.cpp predicts, and an adapter written by the trainer is loaded by
//! llama.cpp with the effect the trainer computes (none for an untrained
//! one, B = 0).

use candle_core::Tensor;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaLoraAdapter, LlamaModel};
use mongars_train::adapter::{AdapterInfo, write_gguf};
use mongars_train::lora::{Lora, LoraOptions, Target};
use mongars_train::model::{Attention, Llama, load_gguf};
use mongars_train::rng::Rng;
use std::num::NonZeroU32;
use std::path::PathBuf;

fn model_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf")
}

const PROMPT: &str = "<|im_start|>user\nWhat is the capital of France? Answer in one word.<|im_end|>\n<|im_start|>assistant\nThe capital of France is Paris";

/// llama.cpp's logits at every position of `tokens`.
fn llama_cpp_logits(
    backend: &LlamaBackend,
    model: &LlamaModel,
    tokens: &[i32],
    adapter: Option<(&mut LlamaLoraAdapter, f32)>,
) -> Vec<Vec<f32>> {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(256))
        .with_n_threads(2)
        .with_n_threads_batch(2);
    let mut ctx = model.new_context(backend, params).unwrap();
    if let Some((a, scale)) = adapter {
        ctx.lora_adapter_set(a, scale).unwrap();
    }
    let mut batch = LlamaBatch::new(256, 1);
    for (i, &t) in tokens.iter().enumerate() {
        batch
            .add(llama_cpp_2::token::LlamaToken(t), i as i32, &[0], true)
            .unwrap();
    }
    ctx.decode(&mut batch).unwrap();
    (0..tokens.len())
        .map(|i| ctx.get_logits_ith(i as i32).to_vec())
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

fn ours(model: &Llama, tokens: &[i32], lora: Option<&Lora>) -> Vec<Vec<f32>> {
    let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    model
        .forward(&ids, lora, Attention::Causal, None)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap()
}

/// Share of positions where both predict the same next token.
fn agreement(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let same = a
        .iter()
        .zip(b)
        .filter(|(x, y)| argmax(x) == argmax(y))
        .count();
    same as f64 / a.len() as f64
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// Large enough for the adapter's effect to stand well above the
/// difference between llama.cpp's quantised arithmetic and our f32 one
/// (small adapters' effects drown in it).
const BSCALE: f32 = 1.0;
fn adapter(model: &Llama, trained: bool) -> Lora {
    let lora = Lora::new(
        &model.config,
        LoraOptions {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec![Target::Q, Target::K, Target::V, Target::O],
            layers: vec![26, 27, 28, 29],
        },
        3,
    )
    .unwrap();
    if trained {
        let mut rng = Rng::new(17);
        for (_, _, pair) in lora.pairs() {
            let v: Vec<f32> = (0..pair.b.elem_count())
                .map(|_| rng.symmetric(BSCALE))
                .collect();
            pair.b
                .set(&Tensor::from_vec(v, pair.b.shape(), pair.b.device()).unwrap())
                .unwrap();
        }
    }
    lora
}

#[test]
fn the_trainer_s_model_and_adapters_match_llama_cpp() {
    let path = model_path();
    assert!(
        path.is_file(),
        "{} is missing: run `make models`",
        path.display()
    );
    let backend = LlamaBackend::init().unwrap();
    let mut engine =
        LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default()).unwrap();
    let tokens: Vec<i32> = engine
        .vocab()
        .tokenize(PROMPT.as_bytes(), false, true)
        .iter()
        .map(|t| t.0)
        .collect();
    assert!(tokens.len() > 20);
    let model = load_gguf(&path).unwrap();
    assert_eq!((model.config.layers, model.config.hidden), (30, 576));

    let dir = tempfile::tempdir().unwrap();
    let info = AdapterInfo {
        architecture: "llama".into(),
        name: "test".into(),
    };
    let (zero, trained) = (adapter(&model, false), adapter(&model, true));
    let (zero_path, trained_path) = (
        dir.path().join("zero.gguf"),
        dir.path().join("trained.gguf"),
    );
    write_gguf(&zero, &info, &zero_path).unwrap();
    write_gguf(&trained, &info, &trained_path).unwrap();
    let mut trained_adapter = engine.lora_adapter_init(&trained_path).unwrap();
    let mut zero_adapter = engine.lora_adapter_init(&zero_path).unwrap();

    let base = llama_cpp_logits(&backend, &engine, &tokens, None);
    let ours_base = ours(&model, &tokens, None);
    let agree = agreement(&base, &ours_base);
    assert!(agree >= 0.9, "same next token at {agree:.2} of positions");
    // The answer itself comes out of both.
    let paris = engine.vocab().tokenize(b" Paris", false, false)[0].0 as usize;
    let before = tokens.len() - 2;
    assert_eq!(argmax(&ours_base[before]), paris);

    // An untrained adapter (B = 0) changes nothing in llama.cpp.
    let with_zero = llama_cpp_logits(&backend, &engine, &tokens, Some((&mut zero_adapter, 1.0)));
    assert_eq!(max_diff(&base, &with_zero), 0.0);

    // At scale 0 an adapter is off.
    let off = llama_cpp_logits(
        &backend,
        &engine,
        &tokens,
        Some((&mut trained_adapter, 0.0)),
    );
    assert_eq!(max_diff(&base, &off), 0.0);
    // A trained one changes llama.cpp's output the way it changes ours.
    let with_trained = llama_cpp_logits(
        &backend,
        &engine,
        &tokens,
        Some((&mut trained_adapter, 1.0)),
    );
    let ours_trained = ours(&model, &tokens, Some(&trained));
    assert!(
        max_diff(&base, &with_trained) > 1.0,
        "the adapter changed nothing"
    );
    let agree = agreement(&with_trained, &ours_trained);
    assert!(
        agree >= 0.85,
        "with the adapter, same next token at {agree:.2}"
    );
    // What the adapter did to each position's logits, in both: the same
    // direction (a transposed or misnamed tensor would not be).
    let shift = |a: &[Vec<f32>], b: &[Vec<f32>]| -> Vec<f32> {
        a.iter()
            .zip(b)
            .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| q - p))
            .collect()
    };
    let (mine, theirs) = (
        shift(&ours_base, &ours_trained),
        shift(&base, &with_trained),
    );
    let dot: f64 = mine
        .iter()
        .zip(&theirs)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
    let cosine = dot / (norm(&mine) * norm(&theirs));
    let ratio = norm(&mine) / norm(&theirs);
    eprintln!(
        "adapter effect: cosine {cosine:.4}, size ratio {ratio:.3}, next-token agreement {agree:.2}"
    );
    assert!(
        cosine > 0.95,
        "the adapter's effect differs: cosine {cosine}"
    );
    assert!(
        (ratio - 1.0).abs() < 0.1,
        "the adapter's effect differs in size: {ratio}"
    );
}
