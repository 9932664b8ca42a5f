//! `POST /api/v1/review/rag-context`: references from the document-retrieval
//! service, and the words of the question worth focusing on.

use crate::error::ApiResult;
use crate::extract::{ApiJson, AuthUser, check_len, invalid};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::curiosity::review_context;
use mongars_core::ports::ResearchQuery;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct RagBody {
    query: String,
    #[serde(default)]
    repositories: Option<Vec<String>>,
    #[serde(default)]
    max_results: Option<u32>,
}

/// A document the retrieval service found.
#[derive(Serialize, ToSchema)]
pub struct Reference {
    repository: String,
    file_path: String,
    summary: String,
    /// 0..1, from the retrieval service.
    score: f32,
    url: String,
}

#[derive(Serialize, ToSchema)]
pub struct RagContext {
    /// False when research or the document service is off.
    enabled: bool,
    focus_areas: Vec<String>,
    references: Vec<Reference>,
}

/// `POST /api/v1/review/rag-context`: `enabled: false` and empty lists when
/// research or the document service is off, never an error.
#[utoipa::path(post, path = "/api/v1/review/rag-context", tag = "helpers", request_body = RagBody,
    security(("bearer" = [])), responses((status = 200, description = "References", body = RagContext)))]
pub async fn rag_context(
    State(state): State<AppState>,
    AuthUser(_who): AuthUser,
    ApiJson(body): ApiJson<RagBody>,
) -> ApiResult<Json<RagContext>> {
    check_len("query", body.query.trim(), 1, 4000)?;
    let max = body.max_results.unwrap_or(5);
    if !(1..=20).contains(&max) {
        return Err(invalid("max_results", "max_results must be 1 to 20"));
    }
    let repositories = body.repositories.unwrap_or_default();
    if repositories.len() > 20 || repositories.iter().any(|r| r.is_empty() || r.len() > 200) {
        return Err(invalid(
            "repositories",
            "at most 20 repository names of 1 to 200 characters",
        ));
    }
    let query = ResearchQuery {
        text: body.query.trim().to_string(),
        repositories,
        max_results: max as usize,
    };
    let found = review_context(state.research.as_deref(), query).await;
    Ok(Json(RagContext {
        enabled: found.enabled,
        focus_areas: found.focus_areas,
        references: found
            .references
            .into_iter()
            .map(|r| Reference {
                repository: r.repository.unwrap_or_default(),
                file_path: r.file_path.unwrap_or_default(),
                summary: r.summary,
                score: r.score,
                url: r.url,
            })
            .collect(),
    }))
}
