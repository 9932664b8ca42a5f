//! Per-user API keys: `POST /api/v1/auth/keys` makes one (the secret is in
//! that answer only), `GET` lists them, `DELETE .../{id}` revokes one at
//! once. Keys are managed with a signed-in token: a key cannot make or
//! revoke keys, so a leaked key cannot outlive its own revocation.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use mongars_core::CoreError;
use mongars_core::auth::Principal;
use mongars_core::domain::ApiKey;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    name: String,
    expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyView {
    id: String,
    name: String,
    prefix: String,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            created_at: rfc3339(k.created_at),
            last_used_at: k.last_used_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NewKeyView {
    #[serde(flatten)]
    key: KeyView,
    /// The key itself, shown this once.
    #[serde(rename = "key")]
    secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    keys: Vec<KeyView>,
}

fn signed_in(who: &Principal) -> Result<(), ApiError> {
    match who.key_id {
        None => Ok(()),
        Some(_) => Err(CoreError::Forbidden(
            "API keys are managed with a signed-in session, not a key",
        )
        .into()),
    }
}

/// `POST /api/v1/auth/keys` `{name, expires_in_days?}`: 201 with the key.
#[utoipa::path(post, path = "/api/v1/auth/keys", tag = "auth", request_body = NewKeyBody,
    security(("bearer" = [])), responses((status = 201, description = "The key, shown this once", body = NewKeyView)))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> ApiResult<Response> {
    signed_in(&who)?;
    let new = state
        .auth
        .create_key(&who, &body.name, body.expires_in_days)
        .await?;
    let view = NewKeyView {
        key: KeyView::from(&new.key),
        secret: new.secret,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// `GET /api/v1/auth/keys`: the caller's usable keys, newest first, without
/// their secrets.
#[utoipa::path(get, path = "/api/v1/auth/keys", tag = "auth",
    security(("bearer" = [])), responses((status = 200, description = "Usable keys, without secrets", body = KeyList)))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> ApiResult<Json<KeyList>> {
    let keys = state.auth.list_keys(who.id).await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(KeyView::from).collect(),
    }))
}

/// `DELETE /api/v1/auth/keys/{id}`: 204; the key stops working at once.
#[utoipa::path(delete, path = "/api/v1/auth/keys/{id}", tag = "auth",
    params(("id" = String, Path, description = "The key's id")),
    security(("bearer" = [])), responses((status = 204, description = "Revoked")))]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    signed_in(&who)?;
    state.auth.revoke_key(who.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
