//! Learning from users: their consent, their ratings and examples, and the
//! operators' review queue and dataset versions.

use crate::error::{ApiError, ApiResult};
use crate::extract::{AdminUser, ApiJson, ApiQuery, AuthUser, parse_limit};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mongars_core::training::curation::CurationService;
use mongars_core::training::model::{Dataset, Rating, Sample};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

pub(crate) fn curation(state: &AppState) -> &Arc<CurationService> {
    &state.training.curation
}

/// `POST /api/v1/conversation/turns/{id}/feedback`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    rating: Rating,
    /// A better answer; with consent it becomes a training sample.
    correction: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FeedbackAnswer {
    /// `recorded`.
    status: &'static str,
    /// The sample made from it: none without training consent, for a
    /// thumbs-down without a correction, or for a turn without a reply.
    sample: Option<SampleView>,
}

/// A sample as its author and operators see it.
#[derive(Serialize, ToSchema)]
pub struct SampleView {
    id: String,
    /// `feedback` or `example`.
    source: String,
    turn_id: Option<String>,
    prompt: String,
    response: String,
    /// Kinds of personal data replaced by placeholders.
    pii: Vec<String>,
    /// `ready`, `held` (waits for an operator) or `dropped`.
    status: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Sample> for SampleView {
    fn from(s: Sample) -> Self {
        SampleView {
            id: s.id,
            source: s.source.as_str().into(),
            turn_id: s.turn_id,
            prompt: s.prompt,
            response: s.response,
            pii: s.pii,
            status: s.status.as_str().into(),
            created_at: s.created_at,
        }
    }
}

/// `POST /api/v1/conversation/turns/{id}/feedback`: rate a reply of yours,
/// optionally with a better answer.
#[utoipa::path(post, path = "/api/v1/conversation/turns/{id}/feedback", tag = "training",
    params(("id" = String, Path, description = "The turn")), request_body = FeedbackBody,
    security(("bearer" = [])), responses((status = 200, description = "Recorded", body = FeedbackAnswer)))]
pub async fn feedback(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<FeedbackBody>,
) -> ApiResult<Json<FeedbackAnswer>> {
    let out = curation(&state)
        .feedback(
            who.id,
            &who.username,
            &id,
            body.rating,
            body.correction.as_deref(),
        )
        .await?;
    state.metrics.training_feedback(body.rating.as_str());
    if let Some(s) = &out.sample {
        state.metrics.training_sample(s.status.as_str());
    }
    Ok(Json(FeedbackAnswer {
        status: "recorded",
        sample: out.sample.map(SampleView::from),
    }))
}

/// `POST /api/v1/training/examples`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExampleBody {
    prompt: String,
    response: String,
}

/// `POST /api/v1/training/examples`: an exchange written as an example of
/// how the assistant should answer. Needs training consent (409 without).
#[utoipa::path(post, path = "/api/v1/training/examples", tag = "training", request_body = ExampleBody,
    security(("bearer" = [])), responses((status = 201, description = "The sample", body = SampleView)))]
pub async fn example(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<ExampleBody>,
) -> ApiResult<Response> {
    let s = curation(&state)
        .example(who.id, &who.username, &body.prompt, &body.response)
        .await?;
    state.metrics.training_sample(s.status.as_str());
    Ok((StatusCode::CREATED, Json(SampleView::from(s))).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    /// 1-500 (default 50).
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewQueue {
    /// Samples held because personal data was found, oldest first.
    items: Vec<SampleView>,
    ready: u64,
    held: u64,
    dropped: u64,
}

/// `GET /api/v1/admin/training/review`: samples held for review.
#[utoipa::path(get, path = "/api/v1/admin/training/review", tag = "training", params(ReviewQuery),
    security(("bearer" = [])), responses((status = 200, description = "Held samples", body = ReviewQueue)))]
pub async fn review_queue(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    ApiQuery(q): ApiQuery<ReviewQuery>,
) -> ApiResult<Json<ReviewQueue>> {
    let limit = parse_limit(q.limit.as_deref(), 50, 500)?;
    let c = curation(&state);
    let items = c.review_queue(limit).await?;
    let n = c.counts().await?;
    Ok(Json(ReviewQueue {
        items: items.into_iter().map(SampleView::from).collect(),
        ready: n.ready,
        held: n.held,
        dropped: n.dropped,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewAction {
    Approve,
    Drop,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    action: ReviewAction,
}

/// `POST /api/v1/admin/training/review/{id}`: approve a held sample (it may
/// enter datasets, with its placeholders) or drop it.
#[utoipa::path(post, path = "/api/v1/admin/training/review/{id}", tag = "training",
    params(("id" = String, Path, description = "The sample")), request_body = ReviewBody,
    security(("bearer" = [])), responses((status = 200, description = "The sample", body = SampleView)))]
pub async fn review(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> ApiResult<Json<SampleView>> {
    let approve = matches!(body.action, ReviewAction::Approve);
    let s = curation(&state).review(&id, approve, who.id).await?;
    state
        .metrics
        .training_review(if approve { "approved" } else { "dropped" });
    Ok(Json(SampleView::from(s)))
}

#[derive(Serialize, ToSchema)]
pub struct DatasetList {
    datasets: Vec<Dataset>,
}

/// `GET /api/v1/admin/training/datasets`: every dataset version, newest first.
#[utoipa::path(get, path = "/api/v1/admin/training/datasets", tag = "training",
    security(("bearer" = [])), responses((status = 200, description = "Dataset versions", body = DatasetList)))]
pub async fn datasets(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
) -> ApiResult<Json<DatasetList>> {
    Ok(Json(DatasetList {
        datasets: curation(&state).datasets().await?,
    }))
}

/// `POST /api/v1/admin/training/datasets`: build a dataset version from
/// every ready sample of users who consent (409 with fewer than two).
#[utoipa::path(post, path = "/api/v1/admin/training/datasets", tag = "training",
    security(("bearer" = [])), responses((status = 201, description = "The new version", body = Dataset)))]
pub async fn build_dataset(
    State(state): State<AppState>,
    AdminUser(who): AdminUser,
) -> ApiResult<Response> {
    let d = curation(&state).build_dataset(Some(who.id)).await?;
    tracing::info!(dataset = %d.id, version = d.version, samples = d.samples, "dataset built");
    Ok((StatusCode::CREATED, Json(d)).into_response())
}

/// `GET /api/v1/admin/training/datasets/{id}`.
#[utoipa::path(get, path = "/api/v1/admin/training/datasets/{id}", tag = "training",
    params(("id" = String, Path, description = "The dataset")),
    security(("bearer" = [])), responses((status = 200, description = "The version", body = Dataset)))]
pub async fn dataset(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(curation(&state).dataset(&id).await?.0))
}

/// One line of an exported dataset.
#[derive(Serialize)]
struct ExportLine<'a> {
    sample_id: &'a str,
    split: &'static str,
    prompt: &'a str,
    response: &'a str,
}

/// `GET /api/v1/admin/training/datasets/{id}/export`: the items as JSON
/// lines `{sample_id, split, prompt, response}`, in sample order.
#[utoipa::path(get, path = "/api/v1/admin/training/datasets/{id}/export", tag = "training",
    params(("id" = String, Path, description = "The dataset")),
    security(("bearer" = [])), responses((status = 200, description = "JSON lines", content_type = "application/x-ndjson", body = String)))]
pub async fn export(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (d, items) = curation(&state).dataset(&id).await?;
    let mut out = String::new();
    for it in &items {
        let line = ExportLine {
            sample_id: &it.sample_id,
            split: it.split.as_str(),
            prompt: &it.prompt,
            response: &it.response,
        };
        let json = serde_json::to_string(&line)
            .map_err(|e| ApiError::from(mongars_core::CoreError::Internal(e.to_string())))?;
        out.push_str(&json);
        out.push('\n');
    }
    let name = format!("attachment; filename=\"dataset-v{}.jsonl\"", d.version);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        out,
    )
        .into_response())
}
