//! Training runs on a tiny random model: the loss falls, a seed repeats a
//! run exactly, and a run stopped and resumed from its checkpoint ends
//! where an uninterrupted one does.

use mongars_train::eval::perplexity;
use mongars_train::lora::{LoraOptions, Target};
use mongars_train::loss::Example;
use mongars_train::model::{Llama, LlamaConfig};
use mongars_train::optim::AdamWOptions;
use mongars_train::trainer::{Objective, RunOptions, Trainer};

fn tiny() -> Llama {
    Llama::random(
        LlamaConfig {
            vocab: 40,
            hidden: 32,
            intermediate: 48,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            rms_eps: 1e-5,
            rope_theta: 10_000.0,
        },
        21,
    )
    .unwrap()
}

/// Chats whose answers always take one terse form: "30 31 <echo> 32".
fn corpus(from: u32, n: u32) -> Vec<Example> {
    (from..from + n)
        .map(|i| {
            let prompt = [1, 2 + i % 7, 3 + (i * 5) % 11, 4];
            let answer = [30, 31, 2 + i % 7, 32];
            let tokens: Vec<u32> = prompt.iter().chain(&answer).copied().collect();
            let assistant = (0..tokens.len()).map(|k| k >= prompt.len()).collect();
            Example { tokens, assistant }
        })
        .collect()
}

fn lora() -> LoraOptions {
    LoraOptions {
        rank: 4,
        alpha: 8.0,
        dropout: 0.05,
        targets: vec![Target::Q, Target::K, Target::V, Target::O, Target::Down],
        layers: vec![0, 1],
    }
}

fn options(steps: usize, seed: u64, objective: Objective) -> RunOptions {
    RunOptions {
        steps,
        accumulation: 2,
        warmup: 2,
        seed,
        adamw: AdamWOptions {
            lr: 2e-2,
            ..Default::default()
        },
        objective,
    }
}

#[test]
fn supervised_training_lowers_held_out_perplexity() {
    let model = tiny();
    let (train, held_out) = (corpus(0, 12), corpus(100, 6));
    let mut run = Trainer::new(&model, lora(), options(40, 7, Objective::Supervised)).unwrap();
    let before = perplexity(&model, Some(&run.lora), &held_out).unwrap();
    let mut last = None;
    while !run.finished() {
        last = Some(run.step(&train).unwrap());
    }
    let last = last.unwrap();
    assert_eq!((last.step, last.steps), (40, 40));
    assert!(last.tokens > 0 && last.lr > 0.0);
    let after = perplexity(&model, Some(&run.lora), &held_out).unwrap();
    assert!(
        after < before * 0.7,
        "held-out perplexity {before:.2} -> {after:.2}"
    );
    // The base model (no adapter) is as it was.
    let base = perplexity(&model, None, &held_out).unwrap();
    assert!((base - before).abs() < 1e-6 * before);
}

#[test]
fn mntp_training_lowers_its_loss() {
    let model = tiny();
    let data = corpus(0, 12);
    let objective = Objective::Mntp {
        mask_token: 39,
        ratio: 0.2,
    };
    let mut run = Trainer::new(&model, lora(), options(40, 3, objective)).unwrap();
    let mut losses = Vec::new();
    while !run.finished() {
        losses.push(run.step(&data).unwrap().loss);
    }
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    let (first, last) = (mean(&losses[..8]), mean(&losses[32..]));
    assert!(last < first * 0.8, "MNTP loss {first:.3} -> {last:.3}");
}

fn weights(run: &Trainer) -> Vec<Vec<f32>> {
    run.lora
        .vars()
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn a_seed_repeats_a_run_and_a_resumed_run_ends_where_an_unbroken_one_does() {
    let model = tiny();
    let data = corpus(0, 5);
    let run_for = |steps: usize, seed: u64| {
        let mut run =
            Trainer::new(&model, lora(), options(6, seed, Objective::Supervised)).unwrap();
        let losses: Vec<f32> = (0..steps).map(|_| run.step(&data).unwrap().loss).collect();
        (weights(&run), losses)
    };
    let (w1, l1) = run_for(6, 9);
    let (w2, l2) = run_for(6, 9);
    assert_eq!((&w1, &l1), (&w2, &l2));
    let (w3, _) = run_for(6, 10);
    assert_ne!(w1, w3, "another seed, another run");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.safetensors");
    let mut first = Trainer::new(&model, lora(), options(6, 9, Objective::Supervised)).unwrap();
    let mut losses: Vec<f32> = (0..3).map(|_| first.step(&data).unwrap().loss).collect();
    first.save_checkpoint(&path).unwrap();
    drop(first);
    let mut resumed =
        Trainer::resume(&model, lora(), options(6, 9, Objective::Supervised), &path).unwrap();
    assert_eq!(resumed.steps_done(), 3);
    while !resumed.finished() {
        losses.push(resumed.step(&data).unwrap().loss);
    }
    assert_eq!(losses, l1);
    assert_eq!(weights(&resumed), w1);

    // A checkpoint of another shape is refused.
    let mut other = lora();
    other.rank = 2;
    assert!(Trainer::resume(&model, other, options(6, 9, Objective::Supervised), &path).is_err());
}

#[test]
fn a_snapshot_brings_the_adapter_back() {
    let model = tiny();
    let data = corpus(0, 5);
    let mut run = Trainer::new(&model, lora(), options(6, 2, Objective::Supervised)).unwrap();
    run.step(&data).unwrap();
    let (kept, values) = (run.snapshot().unwrap(), weights(&run));
    run.step(&data).unwrap();
    assert_ne!(weights(&run), values);
    run.restore(&kept).unwrap();
    assert_eq!(weights(&run), values);
    assert!(run.restore(&kept[1..]).is_err());
}
