//! The user's memories (list, semantic search, create, edit, delete), their
//! style profile, what a turn's prompt recalled, and forgetting everything.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AuthUser};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mongars_core::CoreError;
use mongars_core::conversation::ContextTrace;
use mongars_core::memory::{Found, MemoryService};
use mongars_core::personality::ProfileView;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

fn service(state: &AppState) -> Result<&Arc<MemoryService>, ApiError> {
    state
        .conversation
        .mind()
        .memory
        .as_ref()
        .ok_or_else(|| CoreError::Disabled("Long-term memory").into())
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Serialize, ToSchema)]
pub struct MemoryItem {
    id: String,
    text: String,
    /// The conversation turn it came from, or "user".
    source: String,
    created_at: String,
    updated_at: String,
    expires_at: Option<String>,
    /// How many times it was stated.
    mentions: i64,
    /// Similarity to `q`, for searches.
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
}

impl From<Found> for MemoryItem {
    fn from(f: Found) -> Self {
        let m = f.memory;
        MemoryItem {
            id: m.id,
            text: m.text,
            source: m.source,
            created_at: rfc3339(m.created_at),
            updated_at: rfc3339(m.updated_at),
            expires_at: m.expires_at.map(rfc3339),
            mentions: m.mentions,
            score: f.score.map(|s| (s * 1000.0).round() / 1000.0),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    q: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/memories?q=&limit=`: newest first, or closest to `q` first.
#[utoipa::path(get, path = "/api/v1/memories", tag = "memory", params(ListQuery),
    security(("bearer" = [])), responses((status = 200, description = "The caller's facts", body = Vec<MemoryItem>)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<MemoryItem>>> {
    let limit = match q.limit.as_deref() {
        None | Some("") => 50,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApiError::field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "limit",
                    "limit must be 1 to 500",
                )
            })?,
    };
    if let Some(text) = &q.q {
        crate::extract::check_len("q", text, 0, 1000)?;
    }
    let found = service(&state)?.list(who.id, q.q.as_deref(), limit).await?;
    Ok(Json(found.into_iter().map(MemoryItem::from).collect()))
}

#[derive(Deserialize, ToSchema)]
pub struct TextBody {
    text: String,
}

/// `POST /api/v1/memories {text}`: 201 with the new memory, or 200 with the
/// existing one it restates (now updated).
#[utoipa::path(post, path = "/api/v1/memories", tag = "memory", request_body = TextBody,
    security(("bearer" = [])), responses(
        (status = 201, description = "A new memory", body = MemoryItem),
        (status = 200, description = "The memory it restates, updated", body = MemoryItem)))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<TextBody>,
) -> ApiResult<Response> {
    let (memory, created) = service(&state)?.create(who.id, &body.text).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let item = MemoryItem::from(Found {
        memory,
        score: None,
    });
    Ok((status, Json(item)).into_response())
}

/// `PATCH /api/v1/memories/{id} {text}`
#[utoipa::path(patch, path = "/api/v1/memories/{id}", tag = "memory", request_body = TextBody,
    params(("id" = String, Path, description = "The memory")),
    security(("bearer" = [])), responses((status = 200, description = "The memory", body = MemoryItem)))]
pub async fn edit(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<TextBody>,
) -> ApiResult<Json<MemoryItem>> {
    let memory = service(&state)?.edit(who.id, &id, &body.text).await?;
    Ok(Json(MemoryItem::from(Found {
        memory,
        score: None,
    })))
}

/// `DELETE /api/v1/memories/{id}`: 204.
#[utoipa::path(delete, path = "/api/v1/memories/{id}", tag = "memory",
    params(("id" = String, Path, description = "The memory")),
    security(("bearer" = [])), responses((status = 204, description = "Deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    service(&state)?.delete(who.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/profile`: the caller's learned style.
#[utoipa::path(get, path = "/api/v1/profile", tag = "memory",
    security(("bearer" = [])), responses((status = 200, description = "The learned style", body = ProfileView)))]
pub async fn profile(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> ApiResult<Json<ProfileView>> {
    Ok(Json(state.profiles.profile(who.id).await?.view()))
}

/// `GET /api/v1/conversation/turns/{id}/context`: what recall, style and
/// research put into that turn's prompt.
#[utoipa::path(get, path = "/api/v1/conversation/turns/{id}/context", tag = "conversation",
    params(("id" = String, Path, description = "The turn")),
    security(("bearer" = [])), responses((status = 200, description = "What went into the prompt", body = ContextTrace)))]
pub async fn turn_context(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ContextTrace>> {
    Ok(Json(state.conversation.trace(who.id, &id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForgetQuery {
    /// Another user's name (admins only).
    username: Option<String>,
}

/// `DELETE /api/v1/user/data[?username=]`: delete every turn, memory,
/// vector and the profile of the caller (admins: of any user). The account
/// stays.
/// What forget-me deleted.
#[derive(Serialize, ToSchema)]
pub struct Forgotten {
    /// `forgotten`.
    status: &'static str,
    username: String,
    turns: u64,
    memories: u64,
    profile: bool,
}

#[utoipa::path(delete, path = "/api/v1/user/data", tag = "memory", params(ForgetQuery),
    security(("bearer" = [])), responses((status = 200, description = "Deleted", body = Forgotten)))]
pub async fn forget(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiQuery(q): ApiQuery<ForgetQuery>,
) -> ApiResult<Json<Forgotten>> {
    let (user_id, username) = match q.username.as_deref().filter(|u| !u.is_empty()) {
        None => (who.id, who.username.clone()),
        Some(name) if name.eq_ignore_ascii_case(&who.username) => (who.id, who.username.clone()),
        Some(_) if !who.is_admin() => {
            return Err(CoreError::Forbidden("You may only delete your own data").into());
        }
        Some(name) => {
            let user = state
                .auth
                .find(&mongars_core::domain::Username::parse(name)?)
                .await?;
            (user.id, user.username)
        }
    };
    let report = state.conversation.forget(user_id).await?;
    tracing::info!(user = %username, turns = report.turns, memories = report.memories, "user data deleted");
    Ok(Json(Forgotten {
        status: "forgotten",
        username,
        turns: report.turns,
        memories: report.memories,
        profile: report.profile,
    }))
}
