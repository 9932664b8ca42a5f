//! `GET /api/v1/profile`: the style the assistant learned of the caller.

use crate::error::ApiResult;
use crate::extract::AuthUser;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::personality::ProfileView;

/// `GET /api/v1/profile`: the caller's learned style.
#[utoipa::path(get, path = "/api/v1/profile", tag = "memory",
    security(("bearer" = [])), responses((status = 200, description = "The learned style", body = ProfileView)))]
pub async fn profile(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> ApiResult<Json<ProfileView>> {
    Ok(Json(state.profiles.profile(who.id).await?.view()))
}
