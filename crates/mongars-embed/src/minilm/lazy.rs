//! The in-process model loaded on first use. With memory off nothing embeds
//! on a chat turn; only `/v1/embeddings` and suggestions would, and most
//! installations never call them, so the model's weights (about 90 MB read,
//! over 100 MiB resident) are not loaded until one does. The files are
//! checked at start-up all the same, so a missing model is reported then.

use super::engine::ModelFiles;
use super::{MiniLm, MiniLmOptions, MiniLmStats};
use async_trait::async_trait;
use mongars_core::ports::{EmbedError, Embedder, Embeddings};
use tokio::sync::OnceCell;

pub struct LazyMiniLm {
    options: MiniLmOptions,
    name: String,
    dims: usize,
    model: OnceCell<MiniLm>,
}

impl LazyMiniLm {
    /// Check the model's files without loading the weights.
    pub fn new(options: MiniLmOptions) -> Result<Self, EmbedError> {
        let files = ModelFiles::find(&options)?;
        Ok(Self {
            name: super::model_name(&options),
            dims: files.config.hidden_size,
            options,
            model: OnceCell::new(),
        })
    }

    /// Whether the weights are in memory yet.
    pub fn is_loaded(&self) -> bool {
        self.model.initialized()
    }

    /// The loaded model's counters; all zero before it is loaded.
    pub fn stats(&self) -> MiniLmStats {
        self.model.get().map(MiniLm::stats).unwrap_or_default()
    }

    async fn model(&self) -> Result<&MiniLm, EmbedError> {
        self.model
            .get_or_try_init(|| async {
                let options = self.options.clone();
                tracing::info!(model = %self.name, "loading the embedding model on first use");
                tokio::task::spawn_blocking(move || MiniLm::load(&options))
                    .await
                    .map_err(|e| EmbedError::Unavailable(format!("embedder loader: {e}")))?
            })
            .await
    }
}

#[async_trait]
impl Embedder for LazyMiniLm {
    fn model(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Embeddings, EmbedError> {
        super::check_batch(texts)?;
        self.model().await?.embed(texts).await
    }
}
