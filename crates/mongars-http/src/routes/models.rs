//! Model profiles and provisioning, for admins.

use crate::error::ApiResult;
use crate::extract::AdminUser;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::domain::ModelRole;
use mongars_core::ports::{ModelsView, PullProgress, RoleProvision};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// `GET /api/v1/models`: the active profile, each role's backends and
/// models in failover order, and the profiles available.
#[utoipa::path(get, path = "/api/v1/models", tag = "models", security(("bearer" = [])),
    responses((status = 200, description = "The active profile and each role's backends", body = ModelsView)))]
pub async fn list(State(state): State<AppState>, AdminUser(_): AdminUser) -> Json<ModelsView> {
    let mut view = state.fleet.models();
    view.adapter = state.training.adapters.serving();
    Json(view)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionBody {
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/models/provision`: make sure each role's models are present
/// (Ollama pull, file check for GGUF). One result per role and backend;
/// `ok` is false when any failed.
#[derive(Serialize, ToSchema)]
pub struct Provisioned {
    /// False when any role failed.
    ok: bool,
    roles: Vec<RoleProvision>,
}

#[utoipa::path(post, path = "/api/v1/models/provision", tag = "models", security(("bearer" = [])),
    request_body(content = Option<ProvisionBody>, description = "Empty: every role, without forcing"),
    responses((status = 200, description = "One result per role and backend", body = Provisioned)))]
pub async fn provision(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Provisioned>> {
    // An empty body means every role, without forcing; anything else is
    // JSON like every other route's body.
    let ProvisionBody { roles, force } = if body.iter().all(u8::is_ascii_whitespace) {
        ProvisionBody {
            roles: Vec::new(),
            force: false,
        }
    } else {
        crate::extract::json_body(&headers, &body)?
    };
    let mut parsed = Vec::new();
    for r in &roles {
        let role = ModelRole::parse(r).ok_or_else(|| {
            crate::extract::invalid(
                "roles",
                format!("unknown role {r:?}: use general or coding"),
            )
        })?;
        parsed.push(role);
    }
    tracing::info!(admin = %who.username, ?parsed, force, "model provisioning");
    let progress = Arc::new(|p: PullProgress| {
        tracing::debug!(status = %p.status, completed = ?p.completed, total = ?p.total, "model download");
    });
    let results: Vec<RoleProvision> = state.fleet.provision(&parsed, force, progress).await;
    let ok = results.iter().all(|r| r.ok);
    Ok(Json(Provisioned { ok, roles: results }))
}
