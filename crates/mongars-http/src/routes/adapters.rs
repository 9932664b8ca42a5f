//! The adapter registry for operators: list, approve, reject, activate
//! (409 unless approved) and roll back. Switches happen without a restart.

use crate::error::ApiResult;
use crate::extract::AdminUser;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use mongars_core::training::model::Adapter;
use mongars_core::training::registry::Switched;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct AdapterList {
    adapters: Vec<Adapter>,
    /// The adapter the registry says is active (`null`: the bare model).
    active: Option<String>,
    /// The adapter this node's embedded engine serves with.
    serving: Option<String>,
}

/// `GET /api/v1/admin/adapters`: every adapter, newest first.
#[utoipa::path(get, path = "/api/v1/admin/adapters", tag = "training",
    security(("bearer" = [])), responses((status = 200, description = "The registry", body = AdapterList)))]
pub async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<AdapterList>> {
    let r = &state.training.adapters;
    let (active, serving) = r.active().await?;
    Ok(Json(AdapterList {
        adapters: r.list().await?,
        active: active.map(|a| a.id),
        serving,
    }))
}

/// `GET /api/v1/admin/adapters/{id}`.
#[utoipa::path(get, path = "/api/v1/admin/adapters/{id}", tag = "training",
    params(("id" = String, Path, description = "The adapter")),
    security(("bearer" = [])), responses((status = 200, description = "The adapter", body = Adapter)))]
pub async fn get(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Adapter>> {
    Ok(Json(state.training.adapters.get(&id).await?))
}

/// `POST /api/v1/admin/adapters/{id}/approve`: let a candidate serve once
/// activated.
#[utoipa::path(post, path = "/api/v1/admin/adapters/{id}/approve", tag = "training",
    params(("id" = String, Path, description = "The adapter")),
    security(("bearer" = [])), responses((status = 200, description = "The adapter", body = Adapter)))]
pub async fn approve(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Adapter>> {
    let a = state.training.adapters.approve(&id, who.id).await?;
    tracing::info!(adapter = %id, by = %who.username, "adapter approved");
    Ok(Json(a))
}

/// `POST /api/v1/admin/adapters/{id}/reject`: an adapter that must never
/// serve (not the active one).
#[utoipa::path(post, path = "/api/v1/admin/adapters/{id}/reject", tag = "training",
    params(("id" = String, Path, description = "The adapter")),
    security(("bearer" = [])), responses((status = 200, description = "The adapter", body = Adapter)))]
pub async fn reject(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Adapter>> {
    let a = state.training.adapters.reject(&id).await?;
    tracing::info!(adapter = %id, by = %who.username, "adapter rejected");
    Ok(Json(a))
}

/// The outcome of an activation or rollback.
#[derive(Serialize, ToSchema)]
pub struct SwitchAnswer {
    /// The adapter now active (`null`: the bare model).
    active: Option<Adapter>,
    /// Milliseconds this node's engine took to switch.
    switch_ms: u64,
}

impl From<Switched> for SwitchAnswer {
    fn from(s: Switched) -> Self {
        SwitchAnswer {
            active: s.active,
            switch_ms: s.took.as_millis() as u64,
        }
    }
}

/// `POST /api/v1/admin/adapters/{id}/activate`: serve new replies with an
/// approved adapter (409 `adapter.not_approved` otherwise). Replies in
/// flight finish on the engine they started on.
#[utoipa::path(post, path = "/api/v1/admin/adapters/{id}/activate", tag = "training",
    params(("id" = String, Path, description = "The adapter")),
    security(("bearer" = [])), responses((status = 200, description = "Switched", body = SwitchAnswer)))]
pub async fn activate(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<SwitchAnswer>> {
    let s = state.training.adapters.activate(&id, who.id).await?;
    state.metrics.adapter_switch("activate", s.took);
    tracing::info!(adapter = %id, by = %who.username, took_ms = s.took.as_millis() as u64, "adapter activated");
    Ok(Json(s.into()))
}

/// `POST /api/v1/admin/adapters/rollback`: back to the adapter active
/// before the current one, or the bare model.
#[utoipa::path(post, path = "/api/v1/admin/adapters/rollback", tag = "training",
    security(("bearer" = [])), responses((status = 200, description = "Switched", body = SwitchAnswer)))]
pub async fn rollback(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
) -> ApiResult<Json<SwitchAnswer>> {
    let s = state.training.adapters.rollback().await?;
    state.metrics.adapter_switch("rollback", s.took);
    tracing::info!(
        adapter = s.active.as_ref().map_or("none", |a| a.id.as_str()),
        by = %who.username,
        "adapter rolled back"
    );
    Ok(Json(s.into()))
}
