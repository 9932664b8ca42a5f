//! Direct model access and backend health.

use crate::error::ApiResult;
use crate::extract::{ApiJson, AuthUser};
use crate::routes::conversation::ChatBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::conversation::ChatReply;
use mongars_core::ports::BackendReport;
use serde::Serialize;
use utoipa::ToSchema;

/// `POST /llm/chat`: the message straight to the backend router, without
/// history, memory or system prompt, and not stored. Same shape as the chat
/// endpoint.
/// The message straight to the model: no history, no system prompt, not stored.
#[utoipa::path(post, path = "/llm/chat", tag = "conversation", request_body = ChatBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The reply", body = ChatReply)))]
pub async fn chat(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<ChatBody>,
) -> ApiResult<Json<ChatReply>> {
    Ok(Json(state.conversation.direct(&who, body.into()).await?))
}

/// `GET /llm/health`: every backend of the active profile with its health,
/// breaker state, last error kind and latency. `healthy` when every backend
/// is up with a closed breaker, `degraded` when some can serve, `unhealthy`
/// when none can. `backend` and `model` name the first that can serve.
/// The generation backends: status, breaker state, last error and latency.
#[derive(Serialize, ToSchema)]
pub struct LlmHealth {
    /// `healthy`, `degraded` (some backend down or its breaker not closed, one
    /// can serve) or `unhealthy`.
    status: &'static str,
    /// The backend that would answer first.
    backend: Option<String>,
    model: Option<String>,
    last_check: String,
    detail: String,
    backends: Vec<BackendReport>,
}

/// Health of every generation backend (no authentication).
#[utoipa::path(get, path = "/llm/health", tag = "operations",
    responses((status = 200, description = "Backends and their breakers", body = LlmHealth)))]
pub async fn health(State(state): State<AppState>) -> Json<LlmHealth> {
    let backends = state.fleet.backends().await;
    let usable: Vec<_> = backends
        .iter()
        .filter(|b| b.healthy && b.breaker != "open")
        .collect();
    let status = if usable.is_empty() {
        "unhealthy"
    } else if usable.len() == backends.len() && backends.iter().all(|b| b.breaker == "closed") {
        "healthy"
    } else {
        "degraded"
    };
    let first = usable.first().copied().or(backends.first());
    let detail = backends
        .iter()
        .map(|b| format!("{}: {}", b.name, b.detail))
        .collect::<Vec<_>>()
        .join("; ");
    Json(LlmHealth {
        status,
        backend: first.map(|b| b.name.clone()),
        model: first.map(|b| b.model.clone()),
        last_check: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        detail,
        backends,
    })
}
