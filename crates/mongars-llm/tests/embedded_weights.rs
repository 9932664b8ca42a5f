//! The default model's Q4_1 matrices widened to Q8_0 (`Weights::Q8_0`), on
//! the real model (fetched by `make models`).

use mongars_core::domain::{ChatMessage, ChatRole, GenerationRequest, SamplingParams};
use mongars_llm::embedded::{EmbeddedConfig, Weights, WeightsOutcome, load_backend};
use std::path::{Path, PathBuf};

mod support;
use support::{collect, config, model_path};

fn ask(text: &str) -> GenerationRequest {
    GenerationRequest::classified(
        vec![ChatMessage::new(ChatRole::User, text)],
        SamplingParams::greedy(48),
    )
}

/// A fresh folder of this test process.
fn folder(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mongars-weights-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The default model's settings, widening into a fresh folder.
fn widening(tag: &str, path: &Path) -> (PathBuf, EmbeddedConfig) {
    let dir = folder(tag);
    let mut cfg = config(path.to_path_buf(), 1, 4);
    cfg.weights = Weights::Q8_0 { dir: dir.clone() };
    (dir, cfg)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    all.sort();
    all
}

#[tokio::test]
async fn the_default_model_is_widened_once_and_answers_as_the_file_does() {
    let Some(path) = model_path() else { return };
    let (dir, cfg) = widening("once", &path);
    let wide = load_backend(&cfg).unwrap();
    assert_eq!(wide.weights_outcome(), WeightsOutcome::Widened);
    let written = files(&dir);
    assert_eq!(written.len(), 1, "{written:?}");
    let name = written[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let digest = mongars_core::training::registry::sha256_file(&path).unwrap();
    assert_eq!(
        name,
        format!(
            "{}-{}.q8_0.gguf",
            path.file_stem().unwrap().to_string_lossy(),
            &digest[..16]
        )
    );
    // Q8_0 takes 34 bytes per 32 weights where Q4_1 takes 20.
    let (source, copy) = (
        std::fs::metadata(&path).unwrap().len(),
        std::fs::metadata(&written[0]).unwrap().len(),
    );
    assert!(copy > source * 13 / 10, "{copy} bytes from {source}");

    let file = load_backend(&config(path.clone(), 1, 4)).unwrap();
    assert_eq!(file.weights_outcome(), WeightsOutcome::AsFile);
    let question = "What is the capital of France?";
    let (widened, wu) = collect(&wide, ask(question)).await;
    let (as_file, fu) = collect(&file, ask(question)).await;
    assert!(widened.contains("Paris"), "{widened}");
    assert_eq!(widened, as_file);
    let (a, b) = (wu.mean_logprob.unwrap(), fu.mean_logprob.unwrap());
    assert!(
        (a - b).abs() < 0.05,
        "mean log-probability {a} widened, {b} file"
    );

    // The next start reuses the copy as it is.
    let modified = std::fs::metadata(&written[0]).unwrap().modified().unwrap();
    drop(wide);
    let again = load_backend(&cfg).unwrap();
    assert_eq!(again.weights_outcome(), WeightsOutcome::Reused);
    assert_eq!(files(&dir), written);
    let still = std::fs::metadata(&written[0]).unwrap().modified().unwrap();
    assert_eq!(still, modified);
    let (text, _) = collect(&again, ask(question)).await;
    assert_eq!(text, as_file);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_damaged_copy_is_replaced_and_an_unwritable_folder_serves_the_file() {
    let Some(path) = model_path() else { return };
    let (dir, mut cfg) = widening("damaged", &path);
    drop(load_backend(&cfg).unwrap());
    let copy = files(&dir).remove(0);
    let mut damaged = b"GGUF".to_vec();
    damaged.extend([0xA5; 4096]);
    std::fs::write(&copy, &damaged).unwrap();

    // The damaged copy is not served; it is removed and the file answers.
    let served = load_backend(&cfg).unwrap();
    assert_eq!(served.weights_outcome(), WeightsOutcome::FellBack);
    assert!(files(&dir).is_empty(), "{:?}", files(&dir));
    let (text, _) = collect(&served, ask("What is the capital of France?")).await;
    assert!(text.contains("Paris"), "{text}");
    drop(served);
    // And the next start writes it again.
    let again = load_backend(&cfg).unwrap();
    assert_eq!(again.weights_outcome(), WeightsOutcome::Widened);
    drop(again);

    // A folder that cannot be made (its parent is a file): the file answers.
    let blocker = dir.join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    cfg.weights = Weights::Q8_0 {
        dir: blocker.join("models"),
    };
    let served = load_backend(&cfg).unwrap();
    assert_eq!(served.weights_outcome(), WeightsOutcome::FellBack);
    let (text, _) = collect(&served, ask("What is the capital of France?")).await;
    assert!(text.contains("Paris"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
