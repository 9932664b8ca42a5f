//! Realtime sessions over WebSocket: tickets, the handshake and the session.
//!
//! `POST /api/v1/auth/ws/ticket` gives a signed-in user a single-use ticket;
//! `GET /ws/chat/?t=` checks, in order, that events are on (403), that the
//! `Origin` is allowed (403) and that the ticket is valid (401), then
//! upgrades. When the handshake also carries a bearer token, it must be the
//! ticket's user's. [`session`] runs the socket.

pub mod frames;
mod session;

use crate::error::ApiError;
use crate::extract::{ApiQuery, AuthUser};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use mongars_core::CoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Bytes read from a socket at a time; idle sockets keep only this much.
const READ_BUFFER: usize = 4096;

/// A single-use ticket for one socket.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    /// 64 hex characters, for `GET /ws/chat/?t=`.
    ticket: String,
    /// Seconds it is good for.
    ttl: u64,
}

/// `POST /api/v1/auth/ws/ticket`
#[utoipa::path(post, path = "/api/v1/auth/ws/ticket", tag = "realtime", security(("bearer" = [])),
    responses((status = 200, description = "A ticket", body = Ticket)))]
pub async fn ticket(
    State(state): State<AppState>,
    AuthUser(who): AuthUser,
) -> Result<Json<Ticket>, ApiError> {
    if !state.realtime.options().enabled {
        return Err(disabled());
    }
    let (ticket, ttl) = state.realtime.issue_ticket(&who).await?;
    Ok(Json(Ticket { ticket, ttl }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    /// The ticket.
    #[serde(default)]
    t: Option<String>,
}

/// `GET /ws/chat/?t=<ticket>`: the WebSocket (frames in docs/API.md).
#[utoipa::path(get, path = "/ws/chat/", tag = "realtime", params(Handshake),
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
pub async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<Handshake>,
    bearer: Option<AuthUser>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let refused = |reason: &str| state.metrics.ws.refused.with_label_values(&[reason]).inc();
    if !state.realtime.options().enabled {
        refused("disabled");
        return Err(disabled());
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("").to_string());
    if let Some(o) = &origin {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        if !state.origins.allows(o, host) {
            refused("origin");
            tracing::info!(origin = %o, "socket refused: origin not allowed");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "ws.origin_refused",
                "This origin may not open a socket",
            ));
        }
    }
    let who = match state.realtime.redeem(q.t.as_deref().unwrap_or("")).await {
        Ok(who) => who,
        Err(e) => {
            refused("ticket");
            return Err(e.into());
        }
    };
    if bearer.is_some_and(|AuthUser(b)| b.id != who.id) {
        refused("ticket");
        return Err(CoreError::TicketInvalid.into());
    }
    let subscription = match state.realtime.subscribe(&who) {
        Ok(s) => s,
        Err(e) => {
            refused("too_many");
            return Err(e.into());
        }
    };
    let max_frame = state.realtime.options().max_frame_bytes;
    Ok(upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(max_frame.max(1 << 20))
        .max_message_size(max_frame)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| {
            session::Session::new(state, who, origin, subscription).run(socket)
        }))
}

/// The same without the trailing slash.
#[utoipa::path(get, path = "/ws/chat", tag = "realtime", params(Handshake),
    responses((status = 101, description = "Switching to the WebSocket protocol")))]
pub async fn chat_alias(
    state: State<AppState>,
    headers: HeaderMap,
    q: ApiQuery<Handshake>,
    bearer: Option<AuthUser>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    chat(state, headers, q, bearer, upgrade).await
}

fn disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "realtime.disabled",
        "Realtime events are disabled on this server",
    )
}
