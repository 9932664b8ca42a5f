//! The typed settings tree. Field names mirror `config/default.toml`, which is
//! the single source of defaults; there are no `Default` impls here on purpose.

use crate::secret::Secret;
pub use crate::settings_memory::{
    EmbedPrecision, EmbedderKind, EmbeddingSettings, MemorySettings, ResearchSettings,
    WorkingMemorySettings,
};
pub use crate::settings_peers::{PEERS_BACKEND, PeerSettings, StaticPeer};
pub use crate::settings_realtime::{RealtimeSettings, RedisSettings};
pub use crate::settings_training::TrainingSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub bootstrap: BootstrapSettings,
    pub llm: LlmSettings,
    pub conversation: ConversationSettings,
    pub memory: MemorySettings,
    pub embeddings: EmbeddingSettings,
    pub research: ResearchSettings,
    pub training: TrainingSettings,
    pub peers: PeerSettings,
    pub realtime: RealtimeSettings,
    pub redis: RedisSettings,
    pub metrics: MetricsSettings,
    pub telemetry: TelemetrySettings,
    pub tls: TlsSettings,
    pub vault: VaultSettings,
    pub logging: LoggingSettings,
}

/// Secrets read from HashiCorp Vault (KV version 2) at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaultSettings {
    /// `https://vault.example.com:8200`; empty: Vault is not used.
    pub address: String,
    /// The KV v2 secrets engine's mount.
    pub mount: String,
    /// The secret under the mount whose fields are settings.
    pub path: String,
    /// A file holding a Vault token.
    pub token_file: PathBuf,
    /// Log in with Kubernetes auth as this role (instead of a token file).
    pub kubernetes_role: String,
    pub kubernetes_mount: String,
    /// The pod's ServiceAccount token, sent to Vault's Kubernetes login.
    pub kubernetes_token_file: PathBuf,
    pub timeout_ms: u64,
    /// Attempts at reaching Vault before start-up fails.
    pub attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of CA certificates trusted for outbound TLS besides the
    /// bundled public roots; empty: none.
    pub ca_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    pub profile: String,
    pub profiles: BTreeMap<String, ProfileSettings>,
    pub backends: BTreeMap<String, RemoteBackendSettings>,
    pub resilience: ResilienceSettings,
    pub cache: CacheSettings,
    pub embedded: EmbeddedLlmSettings,
}

impl LlmSettings {
    /// The profile named by `profile` (validation guarantees it exists).
    pub fn active_profile(&self) -> Option<&ProfileSettings> {
        self.profiles.get(&self.profile)
    }

    /// The active profile's settings for one role, for tests and tools that
    /// adjust settings in code. Panics only if validation was skipped.
    pub fn role_mut(&mut self, coding: bool) -> &mut RoleSettings {
        let p = self
            .profiles
            .get_mut(&self.profile)
            .expect("validated settings name an existing profile");
        if coding {
            &mut p.coding
        } else {
            &mut p.general
        }
    }
}

/// The backend name that means the in-process engine of `[llm.embedded]`.
pub const EMBEDDED_BACKEND: &str = "embedded";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSettings {
    pub general: RoleSettings,
    pub coding: RoleSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    pub backends: Vec<String>,
    pub model: String,
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    pub stop: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteKind {
    Ollama,
    Openai,
    Ray,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteBackendSettings {
    pub kind: RemoteKind,
    /// Base URL; for Ray Serve a comma-separated list.
    pub url: String,
    pub model: String,
    pub api_key: Secret,
    pub context_tokens: u32,
    pub retries: u32,
    pub stream: bool,
    pub scale_cycles: u32,
}

impl RemoteBackendSettings {
    /// The endpoints of `url`, split on commas and trimmed.
    pub fn urls(&self) -> Vec<String> {
        self.url
            .split(',')
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResilienceSettings {
    pub connect_timeout_ms: u64,
    pub first_token_timeout_ms: u64,
    pub inter_token_timeout_ms: u64,
    pub total_timeout_ms: u64,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub breaker_failures: u32,
    pub breaker_window_ms: u64,
    pub breaker_cooldown_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    pub enabled: bool,
    pub ttl_secs: u64,
    pub max_entries: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    pub scrape_token: Secret,
    pub listen: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub otlp_endpoint: String,
    /// `http/protobuf` or `http/json`.
    pub otlp_protocol: String,
    pub otlp_interval_secs: u64,
    pub service_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedLlmSettings {
    pub model_path: PathBuf,
    pub threads: u32,
    pub context_tokens: u32,
    pub parallel: u32,
    pub queue_capacity: u32,
    pub max_queue_wait_ms: u64,
    /// Move a conversation's kept turns down its cache when its history
    /// window moves, instead of reading them again.
    pub move_kept_turns: bool,
    /// The weights computed with: the model file as it is, or its 4- and
    /// 5-bit matrices widened to Q8_0 (kept in `data_dir/models`).
    pub weights: EmbeddedWeights,
}

/// `llm.embedded.weights`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmbeddedWeights {
    /// The model file as it is.
    #[serde(rename = "file")]
    File,
    /// Q4_1 and Q5_1 matrices widened to Q8_0 once, for llama.cpp's batched
    /// kernels; other formats as they are.
    #[serde(rename = "q8_0")]
    Q8_0,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    pub system_prompt: String,
    pub history_turns: u32,
    pub max_message_chars: u32,
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub body_limit_bytes: usize,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    pub trust_forwarded_for: bool,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub header_read_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: u32,
    /// Async runtime worker threads; 0: one per usable CPU.
    pub worker_threads: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub token_ttl_minutes: u32,
    pub open_registration: bool,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub max_concurrent_hashes: u32,
    pub throttle: ThrottleSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    pub window_secs: u64,
    pub max_failures_per_user: u32,
    pub max_failures_per_address: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    pub endpoint_enabled: bool,
    pub admin_username: String,
    pub admin_password: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Which database engine a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (contains credentials: do not log).
    Postgres(Secret),
}

impl Settings {
    /// The database this configuration points at.
    pub fn database_target(&self) -> DatabaseTarget {
        database_target(self.database.url.expose(), &self.data_dir)
    }

    /// File that keeps the generated JWT key when `auth.jwt_secret` is empty.
    pub fn jwt_key_path(&self) -> PathBuf {
        self.data_dir.join("jwt.key")
    }

    /// Render as TOML with secrets shown as `[REDACTED]`.
    /// Credentials inside URLs (`http://user:password@host`) are hidden too.
    pub fn to_redacted_toml(&self) -> String {
        let rendered = toml::Value::try_from(self).and_then(|mut v| {
            crate::redact::redact_toml(&mut v);
            toml::to_string_pretty(&v)
        });
        rendered.unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
    }
}

pub(crate) fn database_target(url: &str, data_dir: &Path) -> DatabaseTarget {
    if url.is_empty() {
        return DatabaseTarget::Sqlite(data_dir.join("mongars.db"));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return DatabaseTarget::Postgres(Secret::new(url));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    DatabaseTarget::Sqlite(PathBuf::from(path))
}
