//! `GET /api/v1/profile`: the style the assistant learned of the caller and
//! their training consent; `PATCH /api/v1/profile` changes the consent.

use crate::error::ApiResult;
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::personality::ProfileView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Profile {
    #[serde(flatten)]
    style: ProfileView,
    /// Whether the caller's exchanges may train the model (off by default).
    training_consent: bool,
}

async fn profile_of(state: &AppState, user_id: i64) -> ApiResult<Profile> {
    Ok(Profile {
        style: state.profiles.profile(user_id).await?.view(),
        training_consent: state.training.curation.consent(user_id).await?,
    })
}

/// `GET /api/v1/profile`: the caller's learned style and training consent.
#[utoipa::path(get, path = "/api/v1/profile", tag = "memory",
    security(("bearer" = [])), responses((status = 200, description = "The learned style", body = Profile)))]
pub async fn profile(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> ApiResult<Json<Profile>> {
    Ok(Json(profile_of(&state, who.id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// Let your rated replies, corrections and examples train the model.
    /// Turning it off deletes your samples not yet in a dataset.
    training_consent: Option<bool>,
}

/// `PATCH /api/v1/profile`: change the caller's training consent.
#[utoipa::path(patch, path = "/api/v1/profile", tag = "memory", request_body = ProfilePatch,
    security(("bearer" = [])), responses((status = 200, description = "The profile", body = Profile)))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<ProfilePatch>,
) -> ApiResult<Json<Profile>> {
    if let Some(consent) = body.training_consent {
        let removed = state.training.curation.set_consent(who.id, consent).await?;
        tracing::info!(user = %who.username, consent, samples_deleted = removed, "training consent changed");
    }
    Ok(Json(profile_of(&state, who.id).await?))
}
