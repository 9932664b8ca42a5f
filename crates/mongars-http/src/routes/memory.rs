//! `/api/v1/memories`: the user's memories (list, semantic search, create,
//! edit, delete).

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AuthUser, parse_limit};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mongars_core::CoreError;
use mongars_core::memory::{Found, MemoryService};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

fn service(state: &AppState) -> Result<&Arc<MemoryService>, ApiError> {
    state
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
    let limit = parse_limit(q.limit.as_deref(), 50, 500)?;
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
