//! `POST /api/v1/ui/suggestions`: actions ranked by how close their meaning
//! is to the prompt.

use crate::error::ApiResult;
use crate::extract::{ApiJson, AuthUser, check_len, invalid};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use mongars_core::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

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
    let actions = body.actions.unwrap_or_default();
    if actions.len() > 32 || actions.iter().any(|a| a.trim().is_empty() || a.len() > 200) {
        return Err(invalid(
            "actions",
            "at most 32 actions of 1 to 200 characters",
        ));
    }
    let suggester = state
        .suggester
        .clone()
        .ok_or(CoreError::Disabled("The embedding model"))?;
    state.conversation.check_rate(&who).await?;
    let ranking = suggester.rank(&body.prompt, &actions).await?;
    Ok(Json(Suggestions {
        scores: ranking.ranked.iter().cloned().collect(),
        actions: ranking.ranked.into_iter().map(|(a, _)| a).collect(),
        model: ranking.model,
    }))
}
