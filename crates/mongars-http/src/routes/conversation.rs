//! Chat turns: JSON, Server-Sent Events, and history.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiQuery, AuthUser, parse_limit, subject};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mongars_core::CoreError;
use mongars_core::auth::Principal;
use mongars_core::conversation::{ChatEvent, ChatReply, ChatRequest, ChatStream, ContextTrace};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

/// One server-sent event of a streamed chat, as an SSE parser reads it.
#[derive(ToSchema)]
#[allow(dead_code)] // the contract of the stream, not a type the server builds
pub struct ChatStreamEvent {
    /// `token`, then `done` or `error`.
    #[schema(pattern = "^(token|done|error)$")]
    event: String,
    /// JSON: `{"delta"}` for `token`, the `/chat` reply for `done`,
    /// `{"detail", "code"}` for `error`.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// A message to the assistant.
#[derive(Deserialize, ToSchema)]
pub struct ChatBody {
    /// 1-1000 characters after sanitising.
    message: String,
    /// Up to 100 of `[A-Za-z0-9_.:-]`: turns of one session share history.
    session_id: Option<String>,
}

impl From<ChatBody> for ChatRequest {
    fn from(b: ChatBody) -> Self {
        ChatRequest {
            message: b.message,
            session_id: b.session_id,
        }
    }
}

/// `POST /api/v1/conversation/chat`. Runs under its own request timeout
/// rather than the router's: a turn cut off by it is stored as failed with
/// `request.timeout` instead of being dropped mid-way.
#[utoipa::path(post, path = "/api/v1/conversation/chat", tag = "conversation",
    request_body = ChatBody, security(("bearer" = [])),
    responses((status = 200, description = "The reply, stored with the turn", body = ChatReply)))]
pub async fn chat(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<ChatBody>,
) -> ApiResult<Json<ChatReply>> {
    let deadline = Instant::now() + state.http.request_timeout;
    let mut stream = start(&state, &who, body, deadline).await?;
    match tokio::time::timeout_at(deadline, stream.collect()).await {
        Ok(reply) => Ok(Json(reply?)),
        Err(_) => Err(timed_out(stream)),
    }
}

/// `POST /api/v1/conversation/chat/stream`: `token` events with
/// `{"delta": text}`, then `done` with the reply object, or `error` with
/// `{"detail", "code"}`. Problems found before the first token are plain
/// JSON errors with their status, like the non-streaming endpoint; the
/// request timeout applies until then.
#[utoipa::path(post, path = "/api/v1/conversation/chat/stream", tag = "conversation",
    request_body = ChatBody, security(("bearer" = [])),
    responses((status = 200, description = "Server-sent events: `token` {delta}, then `done` (the /chat object) or `error` {detail, code}",
        content_type = "text/event-stream", body = ChatStreamEvent)))]
pub async fn chat_stream(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiJson(body): ApiJson<ChatBody>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let deadline = Instant::now() + state.http.request_timeout;
    let mut stream = start(&state, &who, body, deadline).await?;
    let first = match tokio::time::timeout_at(deadline, stream.recv()).await {
        Err(_) => return Err(timed_out(stream)),
        Ok(None) => {
            return Err(CoreError::Internal("reply stream ended before any event".into()).into());
        }
        Ok(Some(ChatEvent::Error(e))) => return Err(e.into()),
        Ok(Some(event)) => event,
    };
    Ok(Sse::new(sse_events(first, stream)).keep_alive(KeepAlive::default()))
}

async fn start(
    state: &AppState,
    who: &Principal,
    body: ChatBody,
    deadline: Instant,
) -> ApiResult<ChatStream> {
    let started = state.conversation.chat_stream(who, body.into());
    match tokio::time::timeout_at(deadline, started).await {
        Ok(stream) => Ok(stream?),
        Err(_) => {
            tracing::warn!("request timed out before the turn started");
            Err(CoreError::RequestTimeout.into())
        }
    }
}

/// The request ran out of time: the turn is failed with `request.timeout`.
fn timed_out(stream: ChatStream) -> ApiError {
    tracing::warn!("request timed out; the turn is failed");
    stream.abandon(CoreError::RequestTimeout.code());
    CoreError::RequestTimeout.into()
}

fn sse_events(first: ChatEvent, rx: ChatStream) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold((Some(first), Some(rx)), |(first, rx)| async move {
        let mut rx = rx?;
        let next = match first {
            Some(event) => event,
            None => rx.recv().await?,
        };
        let event = match next {
            ChatEvent::Delta(delta) => json_event("token", &serde_json::json!({ "delta": delta })),
            ChatEvent::Done(reply) => return Some((Ok(json_event("done", &*reply)), (None, None))),
            ChatEvent::Error(e) => return Some((Ok(error_event(e)), (None, None))),
        };
        Some((Ok(event), (None, Some(rx))))
    })
}

pub(crate) fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event(name).data("{}"))
}

pub(crate) fn error_event(e: CoreError) -> Event {
    let api = ApiError::from(e);
    json_event(
        "error",
        &serde_json::json!({ "detail": api.detail, "code": api.code }),
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Another user's name (admins only).
    user_id: Option<String>,
    /// 1-100, default 10.
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HistoryItem {
    user_id: String,
    query: String,
    response: String,
    timestamp: String,
    expires_at: Option<String>,
}

/// `GET /api/v1/conversation/history?user_id=&limit=`: the caller's complete
/// turns, newest first. Admins may read anyone's.
#[utoipa::path(get, path = "/api/v1/conversation/history", tag = "conversation",
    params(HistoryQuery), security(("bearer" = [])),
    responses((status = 200, description = "Complete turns, newest first", body = Vec<HistoryItem>)))]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<Vec<HistoryItem>>> {
    let limit = parse_limit(q.limit.as_deref(), 10, 100)?;
    let (user_id, username) = subject(
        &state,
        &who,
        q.user_id.as_deref(),
        "You may only read your own history",
    )
    .await?;
    let turns = state.conversation.history(user_id, limit).await?;
    Ok(Json(
        turns
            .into_iter()
            .map(|t| HistoryItem {
                user_id: username.clone(),
                query: t.query,
                response: t.response.unwrap_or_default(),
                timestamp: t
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                expires_at: t
                    .expires_at
                    .map(|e| e.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            })
            .collect(),
    ))
}

/// `GET /api/v1/conversation/turns/{id}/context`: what recall, style and
/// research put into that turn's prompt.
#[utoipa::path(get, path = "/api/v1/conversation/turns/{id}/context", tag = "conversation",
    params(("id" = String, Path, description = "The turn")),
    security(("bearer" = [])), responses((status = 200, description = "What went into the prompt", body = ContextTrace)))]
pub async fn turn_context(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ContextTrace>> {
    Ok(Json(state.conversation.trace(who.id, &id).await?))
}
