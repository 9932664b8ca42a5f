//! The typed settings tree. Field names mirror `config/default.toml`, which is
//! the single source of defaults; there are no `Default` impls here on purpose.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
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
    pub logging: LoggingSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    pub backend: LlmBackendKind,
    pub embedded: EmbeddedLlmSettings,
    pub sampling: SamplingSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmBackendKind {
    Embedded,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedLlmSettings {
    pub model_path: PathBuf,
    pub threads: u32,
    pub context_tokens: u32,
    pub parallel: u32,
    pub queue_capacity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingSettings {
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    pub stop: Vec<String>,
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
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render settings: {e}\n"))
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
