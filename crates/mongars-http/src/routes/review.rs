//! Review and UI helpers: `POST /api/v1/review/rag-context` (references
//! from the document-retrieval service) and `POST /api/v1/ui/suggestions`
//! (actions ranked by how close their meaning is to the prompt).

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser, check_len};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use mongars_core::CoreError;
use mongars_core::ports::{ResearchQuery, dot};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct RagBody {
    query: String,
    #[serde(default)]
    repositories: Option<Vec<String>>,
    #[serde(default)]
    max_results: Option<u32>,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, field, message)
}

/// Words of the query worth focusing on: longer than three letters, not
/// common words, in order, without repeats.
fn focus_areas(query: &str) -> Vec<String> {
    const COMMON: &[&str] = &[
        "what", "where", "which", "when", "does", "with", "that", "this", "from", "have", "there",
        "about", "into", "should", "would", "could", "their", "these", "those", "code", "file",
    ];
    let mut out: Vec<String> = Vec::new();
    for w in query.split(|c: char| !c.is_alphanumeric() && c != '_') {
        let l = w.to_lowercase();
        if l.len() > 3 && !COMMON.contains(&l.as_str()) && !out.contains(&l) {
            out.push(l);
        }
    }
    out.truncate(8);
    out
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

impl RagContext {
    fn disabled() -> Self {
        Self {
            enabled: false,
            focus_areas: Vec::new(),
            references: Vec::new(),
        }
    }
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
    let Some(research) = state.conversation.mind().research.clone() else {
        return Ok(Json(RagContext::disabled()));
    };
    let query = ResearchQuery {
        text: body.query.trim().to_string(),
        repositories,
        max_results: max as usize,
    };
    let found = match research.documents(query).await {
        None => return Ok(Json(RagContext::disabled())),
        Some(Ok(found)) => found,
        Some(Err(e)) => {
            tracing::warn!(error = e, "document retrieval failed");
            Vec::new()
        }
    };
    let references = found
        .into_iter()
        .map(|r| Reference {
            repository: r.repository.unwrap_or_default(),
            file_path: r.file_path.unwrap_or_default(),
            summary: r.summary,
            score: r.score,
            url: r.url,
        })
        .collect();
    Ok(Json(RagContext {
        enabled: true,
        focus_areas: focus_areas(&body.query),
        references,
    }))
}

/// Actions offered when the client names none, with what each is for.
const DEFAULT_ACTIONS: &[(&str, &str)] = &[
    ("code", "write, fix or review program code"),
    ("summarize", "summarize a long text into its main points"),
    ("explain", "explain a concept or how something works"),
    ("translate", "translate text into another language"),
    ("research", "look up current facts and sources on the web"),
    ("remember", "remember a fact about me for later"),
    ("plan", "make a plan, a schedule or a list of steps"),
    ("write", "draft an email, a letter or a message"),
];

#[derive(Deserialize, ToSchema)]
pub struct SuggestBody {
    prompt: String,
    #[serde(default)]
    actions: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct Suggestions {
    /// Best first.
    actions: Vec<String>,
    /// Each action's score, 0..1.
    scores: BTreeMap<String, f32>,
    /// The embedding model that scored them.
    model: String,
}

/// `POST /api/v1/ui/suggestions`: the actions ordered by cosine similarity
/// between the prompt and each action's description, scored 0..1.
#[utoipa::path(post, path = "/api/v1/ui/suggestions", tag = "helpers", request_body = SuggestBody,
    security(("bearer" = [])), responses((status = 200, description = "Ranked actions", body = Suggestions)))]
pub async fn suggestions(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<SuggestBody>,
) -> ApiResult<Json<Suggestions>> {
    check_len("prompt", body.prompt.trim(), 1, 8000)?;
    let actions: Vec<(String, String)> = match body.actions {
        Some(list) if !list.is_empty() => {
            if list.len() > 32 || list.iter().any(|a| a.trim().is_empty() || a.len() > 200) {
                return Err(invalid(
                    "actions",
                    "at most 32 actions of 1 to 200 characters",
                ));
            }
            list.into_iter()
                .map(|a| {
                    let description = DEFAULT_ACTIONS
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(a.trim()))
                        .map_or_else(|| a.replace(['_', '-'], " "), |(_, d)| (*d).to_string());
                    (a, description)
                })
                .collect()
        }
        _ => DEFAULT_ACTIONS
            .iter()
            .map(|(a, d)| ((*a).to_string(), (*d).to_string()))
            .collect(),
    };
    let embedder = state
        .embedder
        .clone()
        .ok_or(CoreError::Disabled("The embedding model"))?;
    state.conversation.check_rate(&who).await?;
    let mut texts = vec![body.prompt.trim().to_string()];
    texts.extend(actions.iter().map(|(_, d)| d.clone()));
    let vectors = embedder
        .embed(&texts)
        .await
        .map_err(|e| CoreError::Unavailable(e.to_string()))?
        .vectors;
    let mut scored: Vec<(String, f32)> = actions
        .into_iter()
        .zip(&vectors[1..])
        .map(|((a, _), v)| {
            (
                a,
                ((dot(&vectors[0], v) + 1.0) / 2.0 * 1000.0).round() / 1000.0,
            )
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let scores = scored.iter().map(|(a, s)| (a.clone(), *s)).collect();
    Ok(Json(Suggestions {
        actions: scored.into_iter().map(|(a, _)| a).collect(),
        scores,
        model: embedder.model().to_string(),
    }))
}
