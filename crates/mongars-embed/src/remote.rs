//! Embedders reached over HTTP: Ollama (`POST /api/embed`) and
//! OpenAI-compatible servers (`POST /v1/embeddings`). Vectors are checked
//! for length and normalised to unit length whatever the server sends.

use async_trait::async_trait;
use mongars_core::ports::{EmbedError, Embedder, Embeddings, normalize};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Ollama,
    OpenAi,
}

/// Where and how to reach a remote embedder.
#[derive(Clone)]
pub struct RemoteEmbedderConfig {
    pub kind: RemoteKind,
    /// Base URL, without the API path.
    pub url: String,
    pub model: String,
    /// Length of the model's vectors; answers of another length are refused.
    pub dimensions: usize,
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// Trust for an `https://` URL.
    pub tls: mongars_net::Tls,
}

impl std::fmt::Debug for RemoteEmbedderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEmbedderConfig")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

pub struct RemoteEmbedder {
    cfg: RemoteEmbedderConfig,
    client: reqwest::Client,
}

impl RemoteEmbedder {
    pub fn new(cfg: RemoteEmbedderConfig) -> Result<Self, EmbedError> {
        let client = cfg
            .tls
            .client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(cfg.timeout)
            .build()
            .map_err(|e| EmbedError::Unavailable(format!("HTTP client: {e}")))?;
        Ok(Self { cfg, client })
    }

    async fn call(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, Option<usize>), EmbedError> {
        let base = self.cfg.url.trim_end_matches('/');
        let (url, body) = match self.cfg.kind {
            RemoteKind::Ollama => (
                format!("{base}/api/embed"),
                json!({"model": self.cfg.model, "input": texts}),
            ),
            RemoteKind::OpenAi => (
                format!("{base}/v1/embeddings"),
                json!({"model": self.cfg.model, "input": texts, "encoding_format": "float"}),
            ),
        };
        let mut req = self.client.post(url).json(&body);
        if let Some(key) = &self.cfg.api_key {
            req = req.bearer_auth(key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| EmbedError::Unavailable(format!("{}", e.without_url())))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(EmbedError::Failed(format!("server answered {status}")));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| EmbedError::Failed(format!("{}", e.without_url())))?;
        let malformed = |e: serde_json::Error| EmbedError::Failed(format!("bad answer: {e}"));
        match self.cfg.kind {
            RemoteKind::Ollama => {
                let a: OllamaAnswer = serde_json::from_slice(&bytes).map_err(malformed)?;
                Ok((a.embeddings, a.prompt_eval_count))
            }
            RemoteKind::OpenAi => {
                let mut a: OpenAiAnswer = serde_json::from_slice(&bytes).map_err(malformed)?;
                a.data.sort_by_key(|d| d.index);
                let tokens = a.usage.map(|u| u.prompt_tokens);
                Ok((a.data.into_iter().map(|d| d.embedding).collect(), tokens))
            }
        }
    }
}

#[derive(Deserialize)]
struct OllamaAnswer {
    embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    prompt_eval_count: Option<usize>,
}

#[derive(Deserialize)]
struct OpenAiAnswer {
    data: Vec<OpenAiItem>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiItem {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    prompt_tokens: usize,
}

#[async_trait]
impl Embedder for RemoteEmbedder {
    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn dimensions(&self) -> usize {
        self.cfg.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Embeddings, EmbedError> {
        crate::minilm::check_batch(texts)?;
        let (mut vectors, tokens) = self.call(texts).await?;
        if vectors.len() != texts.len() {
            return Err(EmbedError::Failed(format!(
                "asked for {} vectors, got {}",
                texts.len(),
                vectors.len()
            )));
        }
        for v in &mut vectors {
            if v.len() != self.cfg.dimensions {
                return Err(EmbedError::Failed(format!(
                    "vector of {} dimensions, expected {}",
                    v.len(),
                    self.cfg.dimensions
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::Failed("vector with a non-finite value".into()));
            }
            normalize(v);
        }
        let tokens = tokens.unwrap_or_else(|| texts.iter().map(|t| t.len() / 4 + 1).sum());
        Ok(Embeddings { vectors, tokens })
    }
}
