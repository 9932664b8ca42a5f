//! Curation and the adapter registry, with the embedded engine as the host
//! adapters are switched on.

use async_trait::async_trait;
use mongars_config::Settings;
use mongars_core::CoreError;
use mongars_core::ports::{Clock, CurationRepository, MemoryRepository};
use mongars_core::training::curation::{CurationOptions, CurationService};
use mongars_core::training::registry::{AdapterHost, AdapterRegistry};
use mongars_core::training::runs::RunQueue;
use mongars_http::TrainingState;
use mongars_llm::embedded::{AdapterFile, EmbeddedBackend};
use mongars_store::{
    Database, SqlAdapterRepository, SqlCurationRepository, SqlMemoryRepository, SqlRunRepository,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The embedded engine, switching adapters off the async runtime.
pub struct EngineHost(pub Arc<EmbeddedBackend>);

#[async_trait]
impl AdapterHost for EngineHost {
    async fn switch(&self, adapter: Option<(&str, &Path)>) -> Result<Duration, CoreError> {
        let engine = self.0.clone();
        let file = adapter.map(|(id, path)| AdapterFile {
            id: id.to_string(),
            path: path.to_path_buf(),
            scale: 1.0,
        });
        tokio::task::spawn_blocking(move || engine.switch(file.as_ref()))
            .await
            .map_err(|e| CoreError::Internal(format!("adapter switch task: {e}")))?
            .map_err(|e| CoreError::Unavailable(format!("adapter switch: {e}")))
    }

    fn active(&self) -> Option<String> {
        self.0.active_adapter().map(|a| a.id)
    }
}

/// Where adapter files are kept.
pub fn adapters_dir(settings: &Settings) -> std::path::PathBuf {
    settings.data_dir.join("adapters")
}

pub fn training_state(
    settings: &Settings,
    db: &Database,
    host: Option<Arc<dyn AdapterHost>>,
    clock: &Arc<dyn Clock>,
) -> TrainingState {
    let t = &settings.training;
    let memories: Arc<dyn MemoryRepository> = Arc::new(SqlMemoryRepository::new(db.clone()));
    let curation_repo: Arc<dyn CurationRepository> =
        Arc::new(SqlCurationRepository::new(db.clone()));
    let curation = CurationService::new(
        curation_repo.clone(),
        Some(memories),
        clock.clone(),
        CurationOptions {
            seed: t.seed,
            held_out_share: t.held_out,
        },
    );
    let adapters = AdapterRegistry::new(
        Arc::new(SqlAdapterRepository::new(db.clone())),
        adapters_dir(settings),
        host,
        clock.clone(),
    );
    let runs = RunQueue::new(
        Arc::new(SqlRunRepository::new(db.clone())),
        curation_repo,
        clock.clone(),
        t.steps as i64,
    );
    TrainingState {
        curation: Arc::new(curation),
        adapters: Arc::new(adapters),
        runs: Arc::new(runs),
    }
}
