//! What operators see of the generation backends: health with breaker state,
//! the model profile in use, and provisioning of models.

use super::ProgressSink;
use crate::domain::ModelRole;
use async_trait::async_trait;
use serde::Serialize;

/// One backend as `/llm/health` shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub name: String,
    /// `embedded`, `ollama`, `openai` or `ray`.
    pub kind: String,
    pub model: String,
    /// Roles of the active profile that use it.
    pub roles: Vec<ModelRole>,
    pub healthy: bool,
    pub detail: String,
    /// `closed`, `open` or `half_open`.
    pub breaker: String,
    pub consecutive_failures: u32,
    /// Milliseconds until an open breaker lets a probe through.
    pub retry_in_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Time to first token of the last successful request.
    pub last_latency_ms: Option<f64>,
    pub requests: u64,
    pub failures: u64,
    pub context_window: usize,
    pub active: usize,
    pub queued: usize,
}

/// A backend in a role's failover order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ChainEntry {
    pub backend: String,
    pub kind: String,
    pub model: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct RoleView {
    pub role: ModelRole,
    /// Failover order: the first is the primary.
    pub backends: Vec<ChainEntry>,
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
}

/// `GET /api/v1/models`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ModelsView {
    pub active_profile: String,
    pub roles: Vec<RoleView>,
    pub profiles: Vec<String>,
    /// The LoRA adapter the embedded engine of this node serves with, if any.
    pub adapter: Option<String>,
}

/// The outcome of provisioning one backend of one role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct ProvisionResult {
    pub backend: String,
    pub model: String,
    /// `present`, `pulled` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct RoleProvision {
    pub role: ModelRole,
    pub ok: bool,
    pub results: Vec<ProvisionResult>,
}

#[async_trait]
pub trait ModelFleet: Send + Sync {
    /// Every backend of the active profile, with live health.
    async fn backends(&self) -> Vec<BackendReport>;
    fn models(&self) -> ModelsView;
    /// Make sure the models of `roles` (all when empty) are present.
    async fn provision(
        &self,
        roles: &[ModelRole],
        force: bool,
        progress: ProgressSink,
    ) -> Vec<RoleProvision>;
}
