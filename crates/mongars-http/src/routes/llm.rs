//! Direct model access and backend health.

use crate::error::ApiResult;
use crate::extract::{ApiJson, AuthUser};
use crate::routes::conversation::ChatBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::conversation::ChatReply;
use serde_json::{Value, json};

/// `POST /llm/chat`: the message straight to the backend, without history,
/// memory or system prompt, and not stored. Same shape as the chat endpoint.
pub async fn chat(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<ChatBody>,
) -> ApiResult<Json<ChatReply>> {
    Ok(Json(state.conversation.direct(&who, body.into()).await?))
}

/// `GET /llm/health`: the generation backends and their state.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let llm = state.conversation.llm();
    let h = llm.health().await;
    let status = if h.healthy { "healthy" } else { "unhealthy" };
    Json(json!({
        "status": status,
        "backend": llm.name(),
        "model": llm.model(),
        "last_check": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "detail": h.detail,
        "backends": [{
            "name": llm.name(),
            "model": llm.model(),
            "healthy": h.healthy,
            "detail": h.detail,
            "active": h.active,
            "queued": h.queued,
            "context_window": llm.context_window(),
        }],
    }))
}
