//! Training runs for operators: queue one (it trains while the node is
//! idle), follow it, cancel it while it waits.

use crate::error::ApiResult;
use crate::extract::{AdminUser, ApiJson, ApiQuery, parse_limit};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mongars_core::training::model::{RunObjective, TrainingRun};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The dataset version (default: the newest).
    dataset_id: Option<String>,
    /// `supervised` (default): a chat adapter trained on the replies.
    objective: Option<RunObjective>,
    /// Optimiser steps (default: training.steps).
    steps: Option<i64>,
}

/// `POST /api/v1/admin/training/runs`: queue a run; it trains while the
/// node is idle and pauses when a chat arrives. 409 while another is open.
#[utoipa::path(post, path = "/api/v1/admin/training/runs", tag = "training", request_body = RunBody,
    security(("bearer" = [])), responses((status = 202, description = "Queued", body = TrainingRun)))]
pub async fn create(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    ApiJson(body): ApiJson<RunBody>,
) -> ApiResult<Response> {
    let run = state
        .training
        .runs
        .create(
            body.dataset_id.as_deref(),
            body.objective.unwrap_or(RunObjective::Supervised),
            body.steps,
        )
        .await?;
    tracing::info!(run = %run.id, dataset = %run.dataset_id, by = %who.username, "training run queued");
    Ok((StatusCode::ACCEPTED, Json(run)).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// 1-100 (default 20).
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RunList {
    runs: Vec<TrainingRun>,
}

/// `GET /api/v1/admin/training/runs`: the newest runs first.
#[utoipa::path(get, path = "/api/v1/admin/training/runs", tag = "training", params(RunsQuery),
    security(("bearer" = [])), responses((status = 200, description = "Runs", body = RunList)))]
pub async fn list(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> ApiResult<Json<RunList>> {
    let limit = parse_limit(q.limit.as_deref(), 20, 100)?;
    Ok(Json(RunList {
        runs: state.training.runs.list(limit).await?,
    }))
}

/// `GET /api/v1/admin/training/runs/{id}`: a run's state, step, loss,
/// tokens, pauses, energy estimate and, once done, its figures.
#[utoipa::path(get, path = "/api/v1/admin/training/runs/{id}", tag = "training",
    params(("id" = String, Path, description = "The run")),
    security(("bearer" = [])), responses((status = 200, description = "The run", body = TrainingRun)))]
pub async fn get(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TrainingRun>> {
    Ok(Json(state.training.runs.get(&id).await?))
}

/// `POST /api/v1/admin/training/runs/{id}/cancel`: cancel a queued or
/// paused run (409 while it trains).
#[utoipa::path(post, path = "/api/v1/admin/training/runs/{id}/cancel", tag = "training",
    params(("id" = String, Path, description = "The run")),
    security(("bearer" = [])), responses((status = 200, description = "The run", body = TrainingRun)))]
pub async fn cancel(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<TrainingRun>> {
    Ok(Json(state.training.runs.cancel(&id).await?))
}
