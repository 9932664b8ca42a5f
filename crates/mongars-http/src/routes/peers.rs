//! The peer list and this node's load and telemetry, for admins, with the
//! original's paths and shapes. Peers themselves never call these: they
//! reach only the peer API on the mutual-TLS listener.

use crate::error::ApiResult;
use crate::extract::{AdminUser, ApiJson};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use mongars_core::domain::{NodeLoad, PeerView, Telemetry};
use mongars_core::error::CoreError;
use mongars_core::ports::PeerDirectory;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

fn peers(state: &AppState) -> Result<&Arc<dyn PeerDirectory>, CoreError> {
    state.peers.as_ref().ok_or(CoreError::Disabled("Peers"))
}

/// `POST /api/v1/peer/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// `https://host:port` of the peer's listener (`peers.port`).
    url: String,
    /// SHA-256 of the peer's public key: `mongars peer identity` on it.
    fingerprint: String,
}

/// `POST /api/v1/peer/unregister`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnregisterBody {
    url: String,
}

/// A node's load.
#[derive(Serialize, ToSchema)]
pub struct LoadView {
    /// The node's id (its key fingerprint).
    scheduler_id: String,
    /// Generations waiting for a worker.
    queue_depth: u32,
    /// Generations running.
    active_workers: u32,
    /// Generations that can run at once.
    concurrency: u32,
    /// (queue_depth + active_workers) / concurrency.
    load_factor: f64,
    /// Generated tokens per second over the last minute.
    tokens_per_second: f64,
    /// Models the node generates with.
    models: Vec<String>,
}

impl From<NodeLoad> for LoadView {
    fn from(l: NodeLoad) -> Self {
        Self {
            scheduler_id: l.scheduler_id,
            queue_depth: l.queue_depth,
            active_workers: l.active_workers,
            concurrency: l.concurrency,
            load_factor: l.load_factor,
            tokens_per_second: l.tokens_per_second,
            models: l.models,
        }
    }
}

/// A peer as this node sees it.
#[derive(Serialize, ToSchema)]
pub struct PeerEntry {
    url: String,
    fingerprint: String,
    /// `up`: reporting its load in time; `down`: not.
    state: String,
    /// When its last load report arrived.
    last_seen: Option<DateTime<Utc>>,
    last_load: Option<LoadView>,
    /// Generations this node handed to it since start.
    handed_off: u64,
    created_at: DateTime<Utc>,
}

impl From<PeerView> for PeerEntry {
    fn from(p: PeerView) -> Self {
        Self {
            url: p.url,
            fingerprint: p.fingerprint,
            state: p.state.as_str().to_string(),
            last_seen: p.last_seen,
            last_load: p.last_load.map(Into::into),
            handed_off: p.handed_off,
            created_at: p.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PeerList {
    /// This node's id.
    node_id: String,
    peers: Vec<PeerEntry>,
}

/// `POST|GET /api/v1/peer/telemetry`: worker telemetry (the original's
/// fields).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryBody {
    worker_uptime_seconds: f64,
    tasks_processed: u64,
    tasks_failed: u64,
    task_failure_rate: f64,
    observed_at: DateTime<Utc>,
    source: String,
}

impl From<Telemetry> for TelemetryBody {
    fn from(t: Telemetry) -> Self {
        Self {
            worker_uptime_seconds: t.worker_uptime_seconds,
            tasks_processed: t.tasks_processed,
            tasks_failed: t.tasks_failed,
            task_failure_rate: t.task_failure_rate,
            observed_at: t.observed_at,
            source: t.source,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TelemetryList {
    /// This node's own first, then the latest report of each source.
    reports: Vec<TelemetryBody>,
    /// This node's load, as in `GET /api/v1/peer/load`.
    load: LoadView,
}

#[derive(Serialize, ToSchema)]
pub struct Done {
    /// `ok`.
    status: String,
}

/// `POST /api/v1/peer/register`: accept this peer (by its key fingerprint)
/// and hand it work; stored, so every replica and a restart keep it.
#[utoipa::path(post, path = "/api/v1/peer/register", tag = "peers", request_body = RegisterBody,
    security(("bearer" = [])), responses((status = 200, description = "Registered", body = PeerEntry)))]
pub async fn register(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    ApiJson(body): ApiJson<RegisterBody>,
) -> ApiResult<Json<PeerEntry>> {
    let p = peers(&state)?
        .register(&body.url, &body.fingerprint)
        .await?;
    tracing::info!(peer = %p.url, by = %who.username, "peer registered");
    Ok(Json(p.into()))
}

/// `POST /api/v1/peer/unregister`: stop accepting and calling this peer,
/// at once.
#[utoipa::path(post, path = "/api/v1/peer/unregister", tag = "peers", request_body = UnregisterBody,
    security(("bearer" = [])), responses((status = 200, description = "Removed", body = Done)))]
pub async fn unregister(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    ApiJson(body): ApiJson<UnregisterBody>,
) -> ApiResult<Json<Done>> {
    peers(&state)?.unregister(&body.url).await?;
    tracing::info!(peer = %body.url, by = %who.username, "peer unregistered");
    Ok(Json(Done {
        status: "ok".into(),
    }))
}

/// `GET /api/v1/peer/list`: every peer with its state and last load.
#[utoipa::path(get, path = "/api/v1/peer/list", tag = "peers",
    security(("bearer" = [])), responses((status = 200, description = "The peers", body = PeerList)))]
pub async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<PeerList>> {
    let p = peers(&state)?;
    Ok(Json(PeerList {
        node_id: p.node_id(),
        peers: p.list().await?.into_iter().map(Into::into).collect(),
    }))
}

/// `GET /api/v1/peer/load`: this node's load.
#[utoipa::path(get, path = "/api/v1/peer/load", tag = "peers",
    security(("bearer" = [])), responses((status = 200, description = "This node's load", body = LoadView)))]
pub async fn load(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<LoadView>> {
    Ok(Json(peers(&state)?.load().await.into()))
}

/// `GET /api/v1/peer/telemetry`: this node's telemetry and the reports
/// received.
#[utoipa::path(get, path = "/api/v1/peer/telemetry", tag = "peers",
    security(("bearer" = [])), responses((status = 200, description = "Telemetry", body = TelemetryList)))]
pub async fn telemetry(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<TelemetryList>> {
    let p = peers(&state)?;
    Ok(Json(TelemetryList {
        reports: p.telemetry().into_iter().map(Into::into).collect(),
        load: p.load().await.into(),
    }))
}

/// `POST /api/v1/peer/telemetry`: keep a worker's report (the latest per
/// source).
#[utoipa::path(post, path = "/api/v1/peer/telemetry", tag = "peers", request_body = TelemetryBody,
    security(("bearer" = [])), responses((status = 200, description = "Kept", body = Done)))]
pub async fn report_telemetry(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    ApiJson(body): ApiJson<TelemetryBody>,
) -> ApiResult<Json<Done>> {
    peers(&state)?.record_telemetry(Telemetry {
        worker_uptime_seconds: body.worker_uptime_seconds,
        tasks_processed: body.tasks_processed,
        tasks_failed: body.tasks_failed,
        task_failure_rate: body.task_failure_rate,
        observed_at: body.observed_at,
        source: body.source,
    })?;
    Ok(Json(Done {
        status: "ok".into(),
    }))
}
