//! The in-process embedder against the real all-MiniLM-L6-v2 files
//! (fetched by `make models`).

use mongars_core::ports::{EmbedError, Embedder, dot};
use mongars_embed::{Kernel, MiniLm, MiniLmOptions, Precision};
use std::path::PathBuf;
use std::sync::Arc;

fn options() -> MiniLmOptions {
    MiniLmOptions::new(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
    )
}

fn exact() -> MiniLmOptions {
    MiniLmOptions {
        precision: Precision::F32,
        cache_entries: 0,
        ..options()
    }
}

/// The sentences the 8-bit model is held to (written for the project).
fn sentences() -> Vec<String> {
    include_str!("data/sentences.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

// sentence-transformers' output for "This is an example sentence" starts
// with these.
const REFERENCE: [f32; 5] = [0.06766, 0.06350, 0.04871, 0.07930, 0.03745];

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_example_sentence_matches_the_published_reference() {
    let model = MiniLm::load(&exact()).expect("run `make models` first");
    assert_eq!(model.dimensions(), 384);
    let out = model
        .embed(&strings(&["This is an example sentence"]))
        .await
        .unwrap();
    let v = &out.vectors[0];
    assert_eq!(v.len(), 384);
    for (i, (got, want)) in v.iter().zip(REFERENCE).enumerate() {
        assert!(
            (got - want).abs() < 1e-4,
            "component {i}: got {got}, want {want}"
        );
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    assert_eq!(out.tokens, 7, "[CLS] this is an example sentence [SEP]");
}

#[tokio::test]
async fn batches_give_the_same_vectors_as_single_calls_and_mean_what_they_say() {
    let model = Arc::new(MiniLm::load(&options()).unwrap());
    let texts = strings(&[
        "My name is Ana.",
        "I work on the Orion project, a satellite scheduler written in Rust.",
        "What project do I work on?",
        "The weather in Lisbon is sunny today.",
    ]);
    let batch = model.embed(&texts).await.unwrap().vectors;
    // Concurrent callers are batched together by the worker; padding must
    // not change anyone's vector.
    let singles = futures_like_join(model.clone(), texts.clone()).await;
    for (a, b) in batch.iter().zip(&singles) {
        assert!(1.0 - dot(a, b) < 1e-5);
    }
    let project = dot(&batch[1], &batch[2]);
    let weather = dot(&batch[3], &batch[2]);
    assert!(project > weather + 0.1, "{project} vs {weather}");
}

#[tokio::test]
async fn eight_bit_weights_keep_the_vectors_of_the_exact_model() {
    held_to_the_exact_model(Precision::Int8, 0.999, 1e-3).await;
}

#[tokio::test]
async fn bfloat16_products_keep_the_vectors_of_the_exact_model() {
    let worst = held_to_the_exact_model(Precision::Bf16, 0.9999, 1e-3).await;
    eprintln!("bfloat16: lowest cosine {worst}");
}

#[tokio::test]
async fn half_precision_weights_keep_the_vectors_of_the_exact_model() {
    let worst = held_to_the_exact_model(Precision::F16, 0.99999, 1e-4).await;
    eprintln!("half precision: lowest cosine {worst}");
}

/// Embeds the fixed sentence set with `precision` and with the exact model:
/// every vector within `min_cosine` of the exact one (but not all equal to
/// it), each sentence's ten nearest neighbours the same within 0.99, and the
/// published reference within `tolerance`. Returns the lowest cosine.
async fn held_to_the_exact_model(precision: Precision, min_cosine: f32, tolerance: f32) -> f32 {
    let (exact, other) = (
        MiniLm::load(&exact()).unwrap(),
        MiniLm::load(&MiniLmOptions {
            precision,
            ..exact()
        })
        .unwrap(),
    );
    let texts = sentences();
    assert_eq!(texts.len(), 40);
    let want = exact.embed(&texts).await.unwrap();
    let got = other.embed(&texts).await.unwrap();
    assert_eq!(got.tokens, want.tokens);
    let mut worst = 1.0f32;
    for (text, (a, b)) in texts.iter().zip(want.vectors.iter().zip(&got.vectors)) {
        let cosine = dot(a, b);
        assert!(
            cosine >= min_cosine,
            "{precision:?}: cosine {cosine} for {text:?}"
        );
        worst = worst.min(cosine);
    }
    assert!(
        want.vectors != got.vectors,
        "{precision:?} gave the exact vectors"
    );
    // Recall: each sentence's ten nearest neighbours among the others are
    // the same under both models.
    let neighbours = |vectors: &[Vec<f32>], i: usize| {
        let mut by: Vec<(f32, usize)> = (0..vectors.len())
            .filter(|&j| j != i)
            .map(|j| (dot(&vectors[i], &vectors[j]), j))
            .collect();
        by.sort_by(|a, b| b.0.total_cmp(&a.0));
        by.into_iter().take(10).map(|(_, j)| j).collect::<Vec<_>>()
    };
    let mut same = 0;
    for i in 0..texts.len() {
        let (a, b) = (neighbours(&want.vectors, i), neighbours(&got.vectors, i));
        same += b.iter().filter(|j| a.contains(j)).count();
    }
    let recall = same as f64 / (texts.len() * 10) as f64;
    assert!(recall >= 0.99, "recall@10 with {precision:?}: {recall}");
    let example = other
        .embed(&strings(&["This is an example sentence"]))
        .await
        .unwrap();
    for (i, (got, want)) in example.vectors[0].iter().zip(REFERENCE).enumerate() {
        assert!(
            (got - want).abs() < tolerance,
            "{precision:?}, component {i}: got {got}, want {want}"
        );
    }
    worst
}

#[tokio::test]
async fn the_packed_encoder_gives_the_vectors_of_the_candle_one() {
    let (packed, candle) = (
        MiniLm::load(&exact()).unwrap(),
        MiniLm::load(&MiniLmOptions {
            kernel: Kernel::Candle,
            ..exact()
        })
        .unwrap(),
    );
    let texts = sentences();
    let want = candle.embed(&texts).await.unwrap();
    let got = packed.embed(&texts).await.unwrap();
    assert_eq!(got.tokens, want.tokens);
    for (text, (a, b)) in texts.iter().zip(want.vectors.iter().zip(&got.vectors)) {
        let most = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(most < 1e-5, "{text:?}: a component moved by {most}");
    }
    // One at a time, the same again: sentences laid end to end in a batch
    // do not see each other.
    for (text, want) in texts.iter().zip(&got.vectors).take(5) {
        let alone = packed.embed(std::slice::from_ref(text)).await.unwrap();
        let most = alone.vectors[0]
            .iter()
            .zip(want)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(most < 1e-6, "{text:?} alone moved by {most}");
    }
}

#[tokio::test]
async fn a_text_seen_lately_is_answered_from_the_cache() {
    let model = MiniLm::load(&options()).unwrap();
    let first = model.embed(&strings(&["thanks", "ok"])).await.unwrap();
    assert_eq!(model.stats().cache_hits, 0);
    let forwards = model.stats().forwards;
    let again = model
        .embed(&strings(&["ok", "Good morning!", "thanks"]))
        .await
        .unwrap();
    let stats = model.stats();
    assert_eq!(stats.cache_hits, 2);
    assert_eq!(stats.forwards, forwards + 1, "only the new text ran");
    assert_eq!(again.vectors[0], first.vectors[1]);
    assert_eq!(again.vectors[2], first.vectors[0]);
    assert_eq!(again.tokens, first.tokens + 5, "[CLS] good morning ! [SEP]");
    let off = MiniLm::load(&exact()).unwrap();
    off.embed(&strings(&["thanks"])).await.unwrap();
    off.embed(&strings(&["thanks"])).await.unwrap();
    assert_eq!(off.stats().cache_hits, 0);
    assert_eq!(off.stats().forwards, 2);
}

async fn futures_like_join(model: Arc<MiniLm>, texts: Vec<String>) -> Vec<Vec<f32>> {
    let handles: Vec<_> = texts
        .into_iter()
        .map(|t| {
            let m = model.clone();
            tokio::spawn(async move { m.embed(&[t]).await.unwrap().vectors.remove(0) })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn long_inputs_are_cut_and_bad_batches_refused() {
    let model = MiniLm::load(&options()).unwrap();
    let long = "memory ".repeat(2000);
    let out = model.embed(&[long]).await.unwrap();
    assert_eq!(out.tokens, 256);
    assert!(matches!(
        model.embed(&[]).await,
        Err(EmbedError::Invalid(_))
    ));
    let too_many = vec!["x".to_string(); 257];
    assert!(matches!(
        model.embed(&too_many).await,
        Err(EmbedError::Invalid(_))
    ));
}

#[test]
fn a_missing_model_folder_is_named_in_the_error() {
    let mut o = options();
    o.dir = PathBuf::from("/nonexistent/minilm");
    match MiniLm::load(&o) {
        Err(EmbedError::Unavailable(m)) => assert!(m.contains("/nonexistent/minilm"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("loaded from nowhere"),
    }
}

#[tokio::test]
async fn the_lazy_model_loads_on_first_use_and_reports_missing_files_at_once() {
    let lazy = mongars_embed::LazyMiniLm::new(options()).unwrap();
    assert!(!lazy.is_loaded());
    assert_eq!(lazy.dimensions(), 384);
    assert_eq!(lazy.model(), "all-MiniLM-L6-v2");
    let out = lazy.embed(&strings(&["thanks"])).await.unwrap();
    assert!(lazy.is_loaded());
    assert_eq!(out.vectors[0].len(), 384);
    assert_eq!(lazy.stats().forwards, 1);
    let mut o = options();
    o.dir = PathBuf::from("/nonexistent/minilm");
    assert!(matches!(
        mongars_embed::LazyMiniLm::new(o),
        Err(EmbedError::Unavailable(m)) if m.contains("/nonexistent/minilm")
    ));
}
