//! The in-process embedder against the real all-MiniLM-L6-v2 files
//! (fetched by `make models`).

use mongars_core::ports::{EmbedError, Embedder, dot};
use mongars_embed::{MiniLm, MiniLmOptions};
use std::path::PathBuf;
use std::sync::Arc;

fn options() -> MiniLmOptions {
    MiniLmOptions {
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2"),
        max_tokens: 256,
        batch_size: 32,
    }
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_example_sentence_matches_the_published_reference() {
    let model = MiniLm::load(&options()).expect("run `make models` first");
    assert_eq!(model.dimensions(), 384);
    let out = model
        .embed(&strings(&["This is an example sentence"]))
        .await
        .unwrap();
    let v = &out.vectors[0];
    assert_eq!(v.len(), 384);
    // sentence-transformers' output for this sentence starts with these.
    let reference = [0.06766_f32, 0.06350, 0.04871, 0.07930, 0.03745];
    for (i, (got, want)) in v.iter().zip(reference).enumerate() {
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
