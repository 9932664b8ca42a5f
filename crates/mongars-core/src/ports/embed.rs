//! Sentence embeddings: text in, unit-length vectors out.

use crate::error::CoreError;
use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    /// The input cannot be embedded (empty batch, too many texts...).
    #[error("{0}")]
    Invalid(String),
    /// The embedder cannot be reached or is not loaded.
    #[error("embedder unavailable: {0}")]
    Unavailable(String),
    /// The embedder answered with something unusable.
    #[error("embedder failed: {0}")]
    Failed(String),
}

/// What an embedding failure means to a caller of the core.
impl From<EmbedError> for CoreError {
    fn from(e: EmbedError) -> Self {
        match e {
            EmbedError::Invalid(m) => CoreError::validation("input", m),
            EmbedError::Unavailable(m) | EmbedError::Failed(m) => {
                CoreError::Unavailable(format!("embedder: {m}"))
            }
        }
    }
}

/// Vectors for a batch of texts, in input order.
#[derive(Debug, Clone, Default)]
pub struct Embeddings {
    /// One L2-normalised vector of [`Embedder::dimensions`] floats per text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, for usage reports (an estimate for remote embedders
    /// that do not say).
    pub tokens: usize,
}

#[async_trait]
pub trait Embedder: Send + Sync {
    /// The model's name, as reported to clients.
    fn model(&self) -> &str;
    /// Length of every vector.
    fn dimensions(&self) -> usize;
    /// Embed `texts`, at most [`MAX_EMBED_BATCH`] of them. Long texts are
    /// truncated to the model's window.
    async fn embed(&self, texts: &[String]) -> Result<Embeddings, EmbedError>;
}

/// The most texts one call may embed.
pub const MAX_EMBED_BATCH: usize = 256;

/// Embed one text.
pub async fn embed_one(embedder: &dyn Embedder, text: &str) -> Result<Vec<f32>, EmbedError> {
    let mut out = embedder.embed(&[text.to_string()]).await?;
    out.vectors
        .pop()
        .ok_or_else(|| EmbedError::Failed("no vector returned".into()))
}

/// Scale `v` to unit length in place (left as is when it is all zeros).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Dot product; the cosine similarity of unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
