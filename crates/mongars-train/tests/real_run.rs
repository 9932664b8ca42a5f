//! A short run on the real embedded model (run `make models` first): a few
//! optimiser steps on chats in the generated terse style lower the loss on
//! those chats, and the adapter leaves the general set nearly as it was.
//! The full run, with its figures, is `mongars bench train`.

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use mongars_train::corpus::{general_set, style_corpus};
use mongars_train::eval::perplexity;
use mongars_train::lora::{LoraOptions, Target};
use mongars_train::loss::Example;
use mongars_train::model::load_gguf;
use mongars_train::optim::AdamWOptions;
use mongars_train::trainer::{Objective, RunOptions, Trainer};
use std::path::PathBuf;

/// A chat in SmolLM2's ChatML, the reply's tokens marked.
fn example(vocab_model: &LlamaModel, question: &str, answer: &str) -> Example {
    let prompt = format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n");
    let whole = format!("{prompt}{answer}<|im_end|>\n");
    let tokenize = |s: &str| -> Vec<u32> {
        vocab_model
            .vocab()
            .tokenize(s.as_bytes(), false, true)
            .iter()
            .map(|t| t.0 as u32)
            .collect()
    };
    let (p, tokens) = (tokenize(&prompt), tokenize(&whole));
    assert_eq!(
        tokens[..p.len()],
        p[..],
        "the reply starts on a token boundary"
    );
    let assistant = (0..tokens.len()).map(|i| i >= p.len()).collect();
    Example { tokens, assistant }
}

#[test]
fn a_few_steps_on_the_real_model_learn_the_style() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "{} is missing: run `make models`",
        path.display()
    );
    let backend = LlamaBackend::init().unwrap();
    let vocab = LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default()).unwrap();
    let model = load_gguf(&path).unwrap();
    let train: Vec<Example> = style_corpus(1, 8)
        .iter()
        .map(|(q, a)| example(&vocab, q, a))
        .collect();
    let general: Vec<Example> = general_set()
        .iter()
        .take(6)
        .map(|(q, a)| example(&vocab, q, a))
        .collect();
    let layers = model.config.layers;
    let lora = LoraOptions {
        rank: 4,
        alpha: 8.0,
        dropout: 0.0,
        targets: vec![Target::Q, Target::V, Target::O],
        layers: vec![layers - 2, layers - 1],
    };
    let options = RunOptions {
        steps: 6,
        accumulation: 2,
        warmup: 1,
        seed: 5,
        adamw: AdamWOptions {
            lr: 5e-3,
            ..Default::default()
        },
        objective: Objective::Supervised,
    };
    let mut run = Trainer::new(&model, lora, options).unwrap();
    let (before, general_before) = (
        perplexity(&model, None, &train).unwrap(),
        perplexity(&model, None, &general).unwrap(),
    );
    while !run.finished() {
        let p = run.step(&train).unwrap();
        assert!(p.loss.is_finite());
    }
    let after = perplexity(&model, Some(&run.lora), &train).unwrap();
    let general_after = perplexity(&model, Some(&run.lora), &general).unwrap();
    eprintln!(
        "style perplexity {before:.1} -> {after:.1}, general {general_before:.2} -> {general_after:.2}"
    );
    assert!(
        after < before * 0.7,
        "style perplexity {before:.1} -> {after:.1}"
    );
    assert!(
        general_after < general_before * 1.1,
        "general {general_before:.2} -> {general_after:.2}"
    );
}
