//! OpenAI-compatible API: `/v1/chat/completions` (streaming and not) and
//! `/v1/models`, so existing clients and SDKs work unchanged. Authenticated
//! with the same bearer tokens (give a monGARS token as the API key).
//! Any `model` name is accepted. `general` or `coding` pick that model role;
//! any other name lets the task classifier choose from the last user message.
//! Responses carry the id of the model that answered.

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, AuthUser, invalid};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use mongars_core::CoreError;
use mongars_core::domain::{
    ChatMessage, ChatRole, FinishReason, GenerationEvent, GenerationRequest, GenerationUsage,
    ModelRole, PerRole, SamplingParams, classify_task, last_user_text,
};
use mongars_core::ports::{GenerationStream, LlmError, read_to_end};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::convert::Infallible;
use utoipa::ToSchema;

const MAX_MESSAGES: usize = 256;

#[derive(Deserialize, ToSchema)]
pub struct CompletionBody {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<OaMessage>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<StopField>,
    #[serde(default)]
    stream: bool,
    seed: Option<i64>,
    n: Option<u32>,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize, ToSchema)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize, ToSchema)]
struct OaMessage {
    role: String,
    content: Option<Content>,
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize, ToSchema)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
enum StopField {
    One(String),
    Many(Vec<String>),
}

/// Parse the body into a generation request, with defaults from settings.
fn to_request(
    body: CompletionBody,
    defaults: &PerRole<SamplingParams>,
) -> Result<(GenerationRequest, bool, bool), ApiError> {
    if body.messages.is_empty() || body.messages.len() > MAX_MESSAGES {
        return Err(invalid(
            "messages",
            format!("messages must hold 1 to {MAX_MESSAGES} items"),
        ));
    }
    if body.n.is_some_and(|n| n != 1) {
        return Err(invalid("n", "only n = 1 is supported"));
    }
    let mut messages = Vec::with_capacity(body.messages.len());
    for (i, m) in body.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => ChatRole::System,
            "user" => ChatRole::User,
            "assistant" => ChatRole::Assistant,
            other => {
                return Err(invalid(
                    &format!("messages[{i}].role"),
                    format!("unsupported role {other:?}"),
                ));
            }
        };
        let content = match m.content {
            None => String::new(),
            Some(Content::Text(t)) => t,
            Some(Content::Parts(parts)) => {
                if parts.iter().any(|p| p.kind != "text") {
                    return Err(invalid(
                        &format!("messages[{i}].content"),
                        "only text content is supported",
                    ));
                }
                parts
                    .into_iter()
                    .filter_map(|p| p.text)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        };
        messages.push(ChatMessage::new(role, content.replace('\0', "")));
    }
    // A model named like a role ("coding") picks that role; any other name
    // lets the task classifier choose from the last user message.
    let role = body
        .model
        .as_deref()
        .and_then(ModelRole::parse)
        .or_else(|| last_user_text(&messages).map(classify_task))
        .unwrap_or(ModelRole::General);
    let defaults = defaults.get(role);
    let temperature = body.temperature.unwrap_or(f64::from(defaults.temperature));
    if !(0.0..=2.0).contains(&temperature) {
        return Err(invalid(
            "temperature",
            "temperature must be between 0 and 2",
        ));
    }
    let top_p = body.top_p.unwrap_or(f64::from(defaults.top_p));
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(invalid(
            "top_p",
            "top_p must be greater than 0 and at most 1",
        ));
    }
    let max_tokens = body
        .max_completion_tokens
        .or(body.max_tokens)
        .unwrap_or(defaults.max_tokens);
    if max_tokens == 0 {
        return Err(invalid("max_tokens", "max_tokens must be at least 1"));
    }
    let stop = match body.stop {
        None => defaults.stop.clone(),
        Some(StopField::One(s)) => vec![s],
        Some(StopField::Many(v)) => v,
    };
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(invalid("stop", "stop takes at most 4 non-empty strings"));
    }
    let include_usage = body.stream_options.is_some_and(|o| o.include_usage);
    let request = GenerationRequest {
        messages,
        sampling: SamplingParams {
            temperature: temperature as f32,
            top_p: top_p as f32,
            max_tokens,
            stop,
            seed: body.seed.map(|s| s as u32),
        },
        role,
        // Set from the caller by the conversation service.
        account: None,
    };
    Ok((request, body.stream, include_usage))
}

/// Errors in the shape OpenAI clients read (`error.message`), keeping the
/// monGARS `detail` and `code` too.
pub struct OpenAiError(ApiError);

impl<E: Into<ApiError>> From<E> for OpenAiError {
    fn from(e: E) -> Self {
        OpenAiError(e.into())
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let kind = match e.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        let body = json!({
            "error": { "message": e.detail, "type": kind, "code": e.code, "param": null },
            "detail": e.detail,
            "code": e.code,
        });
        let mut resp = (e.status, Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(secs) = e.retry_after_secs {
            headers.insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let Some(c) = e.challenge {
            headers.insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(c),
            );
        }
        resp
    }
}

#[derive(Serialize, ToSchema)]
pub struct AssistantMessage {
    /// `assistant`.
    role: &'static str,
    content: String,
}

#[derive(Serialize, ToSchema)]
pub struct CompletionChoice {
    index: u32,
    message: AssistantMessage,
    /// `stop` or `length`.
    finish_reason: &'static str,
    /// Always null.
    logprobs: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CompletionUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

impl From<&GenerationUsage> for CompletionUsage {
    fn from(u: &GenerationUsage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
        }
    }
}

/// A whole completion (without `stream`).
#[derive(Serialize, ToSchema)]
pub struct ChatCompletion {
    id: String,
    /// `chat.completion`.
    object: &'static str,
    created: i64,
    model: String,
    choices: Vec<CompletionChoice>,
    usage: CompletionUsage,
}

/// `POST /v1/chat/completions`
#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", request_body = CompletionBody,
    security(("bearer" = [])), responses(
        (status = 200, description = "The completion; with `stream`, `text/event-stream` of `chat.completion.chunk` objects ending with `data: [DONE]`",
            body = ChatCompletion)))]
pub async fn chat_completions(
    State(state): State<AppState>,
    who: Result<AuthUser, ApiError>,
    body: Result<ApiJson<CompletionBody>, ApiError>,
) -> Result<Response, OpenAiError> {
    let AuthUser(who) = who?;
    let ApiJson(body) = body?;
    let defaults = &state.conversation.options().sampling;
    let (request, stream, include_usage) = to_request(body, defaults)?;
    let (rx, _) = state.conversation.complete(&who, request).await?;
    let meta = Meta {
        id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        created: chrono::Utc::now().timestamp(),
        model: state.conversation.llm().model().to_string(),
    };
    if stream {
        let events = chunks(rx, meta, include_usage);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let (text, usage) = read_to_end(rx).await.map_err(CoreError::from)?;
    Ok(Json(ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        choices: vec![CompletionChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: text,
            },
            finish_reason: finish(usage.finish_reason),
            logprobs: None,
        }],
        usage: CompletionUsage::from(&usage),
    })
    .into_response())
}

struct Meta {
    id: String,
    created: i64,
    model: String,
}

fn finish(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        _ => "stop",
    }
}

fn usage_json(u: &GenerationUsage) -> Value {
    json!(CompletionUsage::from(u))
}

fn chunk(meta: &Meta, delta: Value, finish_reason: Option<&str>) -> Event {
    let body = json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": null }],
    });
    Event::default().data(body.to_string())
}

/// Chunks in OpenAI's streaming format, ending with `data: [DONE]`. A relay
/// task feeds them; when the client goes away the relay ends and drops the
/// generation stream, which stops the backend.
fn chunks(
    mut rx: GenerationStream,
    meta: Meta,
    include_usage: bool,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(32);
    tokio::spawn(async move {
        let mut pending = vec![chunk(
            &meta,
            json!({"role": "assistant", "content": ""}),
            None,
        )];
        loop {
            for event in pending.drain(..) {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
            let item = tokio::select! {
                _ = tx.closed() => return,
                item = rx.recv() => item,
            };
            match item {
                Some(Ok(GenerationEvent::Delta(d))) => {
                    pending.push(chunk(&meta, json!({ "content": d }), None))
                }
                Some(Ok(GenerationEvent::Done(u))) => {
                    let mut tail = vec![chunk(&meta, json!({}), Some(finish(u.finish_reason)))];
                    if include_usage {
                        let body = json!({
                            "id": meta.id, "object": "chat.completion.chunk", "created": meta.created,
                            "model": meta.model, "choices": [], "usage": usage_json(&u),
                        });
                        tail.push(Event::default().data(body.to_string()));
                    }
                    tail.push(Event::default().data("[DONE]"));
                    for event in tail {
                        let _ = tx.send(event).await;
                    }
                    return;
                }
                other => {
                    let err = match other {
                        Some(Err(e)) => e,
                        _ => LlmError::Failed("generation ended early".into()),
                    };
                    for event in stream_error(err) {
                        let _ = tx.send(event).await;
                    }
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(out, |mut out| async move {
        out.recv().await.map(|e| (Ok(e), out))
    })
}

fn stream_error(e: LlmError) -> Vec<Event> {
    let api = ApiError::from(CoreError::from(e));
    let body =
        json!({ "error": { "message": api.detail, "type": "server_error", "code": api.code } });
    vec![
        Event::default().data(body.to_string()),
        Event::default().data("[DONE]"),
    ]
}

#[derive(Serialize, ToSchema)]
pub struct ModelEntry {
    id: String,
    /// `model`.
    object: &'static str,
    created: i64,
    owned_by: &'static str,
    context_window: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ModelList {
    /// `list`.
    object: &'static str,
    data: Vec<ModelEntry>,
}

/// `GET /v1/models`
#[utoipa::path(get, path = "/v1/models", tag = "openai", security(("bearer" = [])),
    responses((status = 200, description = "The model that answers", body = ModelList)))]
pub async fn models(
    State(state): State<AppState>,
    AuthUser(_): AuthUser,
) -> ApiResult<Json<ModelList>> {
    let llm = state.conversation.llm();
    Ok(Json(ModelList {
        object: "list",
        data: vec![ModelEntry {
            id: llm.model().to_string(),
            object: "model",
            created: 0,
            owned_by: "mongars",
            context_window: llm.context_window(),
        }],
    }))
}
