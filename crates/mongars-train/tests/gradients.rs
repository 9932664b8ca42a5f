//! The forward pass is differentiable end to end: on a tiny random model
//! every LoRA tensor gets a gradient, and the gradients agree with finite
//! differences of the loss.

use candle_core::{Tensor, Var};
use mongars_train::lora::{Lora, LoraOptions, Target};
use mongars_train::loss::{Example, mntp_loss, sft_loss};
use mongars_train::model::{Attention, Llama, LlamaConfig};
use mongars_train::rng::Rng;

fn tiny() -> Llama {
    Llama::random(
        LlamaConfig {
            vocab: 37,
            hidden: 16,
            intermediate: 24,
            layers: 2,
            heads: 4,
            kv_heads: 2,
            rms_eps: 1e-5,
            rope_theta: 10_000.0,
        },
        11,
    )
    .unwrap()
}

fn adapter(model: &Llama, targets: Vec<Target>) -> Lora {
    let lora = Lora::new(
        &model.config,
        LoraOptions {
            rank: 2,
            alpha: 4.0,
            dropout: 0.0,
            targets,
            layers: vec![0, 1],
        },
        5,
    )
    .unwrap();
    // B starts at zero (and so would A's gradient): give it values.
    let mut rng = Rng::new(9);
    for (_, _, pair) in lora.pairs() {
        let v: Vec<f32> = (0..pair.b.elem_count())
            .map(|_| rng.symmetric(0.3))
            .collect();
        pair.b
            .set(&Tensor::from_vec(v, pair.b.shape(), pair.b.device()).unwrap())
            .unwrap();
    }
    lora
}

fn example() -> Example {
    Example {
        tokens: vec![1, 5, 9, 2, 30, 7, 7, 12, 3],
        assistant: vec![false, false, false, false, true, true, true, true, true],
    }
}

fn value(t: &Tensor) -> f32 {
    t.to_scalar::<f32>().unwrap()
}

#[test]
fn every_lora_tensor_gets_a_gradient_under_both_objectives() {
    let model = tiny();
    let lora = adapter(&model, Target::ALL.to_vec());
    let sft = sft_loss(&model, Some(&lora), &example(), None).unwrap();
    let mntp = mntp_loss(
        &model,
        Some(&lora),
        &example().tokens,
        0,
        0.3,
        &mut Rng::new(3),
    )
    .unwrap();
    for loss in [sft, mntp] {
        let grads = loss.backward().unwrap();
        for (layer, target, pair) in lora.pairs() {
            for (name, var) in [("A", &pair.a), ("B", &pair.b)] {
                let g = grads.get(var.as_tensor()).unwrap_or_else(|| {
                    panic!("no gradient for {name} of {target:?} in block {layer}")
                });
                let norm = value(&g.sqr().unwrap().sum_all().unwrap());
                assert!(
                    norm > 0.0,
                    "zero gradient for {name} of {target:?} in block {layer}"
                );
            }
        }
    }
}

/// The loss with one entry of `var` moved by `by`.
fn nudged(model: &Llama, lora: &Lora, var: &Var, at: usize, by: f32) -> f32 {
    let orig = var
        .as_tensor()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let mut v = orig.clone();
    v[at] += by;
    var.set(&Tensor::from_vec(v, var.shape(), var.device()).unwrap())
        .unwrap();
    let loss = value(&sft_loss(model, Some(lora), &example(), None).unwrap());
    var.set(&Tensor::from_vec(orig, var.shape(), var.device()).unwrap())
        .unwrap();
    loss
}

#[test]
fn gradients_agree_with_finite_differences() {
    let model = tiny();
    let lora = adapter(&model, vec![Target::Q, Target::V, Target::Down]);
    let grads = sft_loss(&model, Some(&lora), &example(), None)
        .unwrap()
        .backward()
        .unwrap();
    let mut checked = 0;
    for (_, target, pair) in lora.pairs() {
        for var in [&pair.a, &pair.b] {
            let g = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            // The entry with the largest gradient, where f32 differences
            // are most telling.
            let (at, &want) = g
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap();
            let eps = 1e-2;
            let got = (nudged(&model, &lora, var, at, eps) - nudged(&model, &lora, var, at, -eps))
                / (2.0 * eps);
            assert!(
                (got - want).abs() <= 0.05 * want.abs() + 1e-4,
                "{target:?}: finite difference {got}, gradient {want}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn an_untrained_adapter_changes_nothing_and_a_trained_one_does() {
    let model = tiny();
    let fresh = Lora::new(
        &model.config,
        LoraOptions {
            rank: 4,
            alpha: 8.0,
            dropout: 0.1,
            targets: vec![Target::Q, Target::K, Target::V, Target::O],
            layers: vec![1],
        },
        1,
    )
    .unwrap();
    let tokens = [3u32, 4, 5, 6];
    let base = model
        .forward(&tokens, None, Attention::Causal, None)
        .unwrap();
    let with = model
        .forward(&tokens, Some(&fresh), Attention::Causal, None)
        .unwrap();
    let diff = value(
        &(base.clone() - with)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap(),
    );
    assert_eq!(diff, 0.0);
    let trained = adapter(&model, vec![Target::O]);
    let moved = model
        .forward(&tokens, Some(&trained), Attention::Causal, None)
        .unwrap();
    let diff = value(&(base - moved).unwrap().abs().unwrap().max_all().unwrap());
    assert!(diff > 1e-4);
}

#[test]
fn causal_outputs_ignore_later_tokens_and_bidirectional_ones_do_not() {
    let model = tiny();
    let a = [3u32, 4, 5, 6];
    let b = [3u32, 4, 5, 20];
    let first = |t: &[u32], mode| {
        model
            .forward(t, None, mode, None)
            .unwrap()
            .narrow(0, 0, 3)
            .unwrap()
    };
    let same = |x: Tensor, y: Tensor| value(&(x - y).unwrap().abs().unwrap().max_all().unwrap());
    assert!(same(first(&a, Attention::Causal), first(&b, Attention::Causal)) < 1e-6);
    assert!(
        same(
            first(&a, Attention::Bidirectional),
            first(&b, Attention::Bidirectional)
        ) > 1e-4
    );
}

#[test]
fn bad_inputs_are_refused() {
    let model = tiny();
    assert!(model.forward(&[], None, Attention::Causal, None).is_err());
    assert!(model.forward(&[99], None, Attention::Causal, None).is_err());
    let none = Example {
        tokens: vec![1, 2, 3],
        assistant: vec![false, false, false],
    };
    assert!(sft_loss(&model, None, &none, None).is_err());
    let bad = LoraOptions {
        rank: 2,
        alpha: 2.0,
        dropout: 0.0,
        targets: vec![Target::Q],
        layers: vec![7],
    };
    assert!(Lora::new(&model.config, bad, 1).is_err());
}
