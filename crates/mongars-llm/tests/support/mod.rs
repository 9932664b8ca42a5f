//! What the tests of the embedded engine on the real model share.

use mongars_core::domain::{GenerationRequest, GenerationUsage};
use mongars_core::ports::{LlmBackend, read_to_end};
use mongars_llm::embedded::{EmbeddedBackend, EmbeddedConfig, Weights};
use std::path::PathBuf;
use std::time::Duration;

/// The default model, fetched by `make models`.
pub fn model_path() -> Option<PathBuf> {
    mongars_store::testing::default_model()
}

pub fn config(path: PathBuf, parallel: usize, queue: usize) -> EmbeddedConfig {
    EmbeddedConfig {
        model_path: path,
        threads: 2,
        context_tokens: 2048,
        parallel,
        queue_capacity: queue,
        max_queue_wait: Duration::ZERO,
        move_kept_turns: true,
        weights: Weights::AsFile,
    }
}

pub async fn collect(
    backend: &EmbeddedBackend,
    req: GenerationRequest,
) -> (String, GenerationUsage) {
    let rx = backend.generate(req).await.unwrap();
    read_to_end(rx).await.unwrap()
}
