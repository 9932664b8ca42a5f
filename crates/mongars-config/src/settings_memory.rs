//! Settings of memory, embeddings and research (`[memory]`, `[embeddings]`,
//! `[research]` in `config/default.toml`).

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    pub enabled: bool,
    pub working: WorkingMemorySettings,
    pub recall_k: u32,
    pub core_facts: u32,
    pub min_similarity: f32,
    pub dedup_similarity: f32,
    pub recall_max_tokens: u32,
    pub fact_ttl_days: u32,
    pub turn_ttl_days: u32,
    pub index_cache_users: u32,
    pub purge_interval_secs: u64,
    pub personality: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingMemorySettings {
    pub max_turns: u32,
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedderKind {
    Embedded,
    Ollama,
    Openai,
}

/// Weights of the embedded model's projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedPrecision {
    /// `Bf16` on processors with AVX-512 BF16, else `F16`.
    Auto,
    Int8,
    F16,
    F32,
    /// Weights and activations in bfloat16 (fast with AVX-512 BF16).
    Bf16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSettings {
    pub kind: EmbedderKind,
    pub model_dir: PathBuf,
    pub max_tokens: u32,
    pub batch_size: u32,
    pub precision: EmbedPrecision,
    pub cache_entries: u32,
    pub url: String,
    pub model: String,
    pub dimensions: u32,
    pub api_key: Secret,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResearchSettings {
    pub enabled: bool,
    pub searxng_url: String,
    pub documents_url: String,
    pub max_results: u32,
    pub provider_timeout_ms: u64,
    pub fetch_pages: bool,
    pub page_timeout_ms: u64,
    pub max_page_bytes: u64,
    pub gap_similarity: f32,
    pub user_agent: String,
}
