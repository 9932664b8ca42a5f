//! Ports of realtime sessions and of state shared between replicas: the
//! event bus, the WebSocket ticket store and the chat rate limiter. Each has
//! an in-process implementation in [`crate::realtime`] and a Redis one in
//! `mongars-redis`.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Something that happened to one user, for every socket of that user.
#[derive(Debug, Clone)]
pub struct Event {
    pub user_id: i64,
    /// The server frame, already serialised:
    /// `{"id", "type", "ts", "user", "data"}`.
    pub frame: String,
}

impl Event {
    /// A server frame of `kind` about `user` (the username shown in `user`).
    pub fn new(user_id: i64, user: &str, kind: &str, data: serde_json::Value) -> Self {
        let ts = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
        let frame = serde_json::json!({
            "id": uuid::Uuid::new_v4().to_string(),
            "type": kind,
            "ts": ts,
            "user": user,
            "data": data,
        });
        Self {
            user_id,
            frame: frame.to_string(),
        }
    }
}

/// Carries events to every replica's sockets. Publishing never waits: an
/// implementation that talks to a server queues the event and sends it from
/// a task of its own, so a slow bus never slows a reply.
pub trait EventBus: Send + Sync {
    fn publish(&self, event: Event);
    /// Close every socket of `user_id` on every replica (their access was
    /// revoked). Carried in order with the events.
    fn revoke(&self, user_id: i64);
}

/// Who a WebSocket ticket was issued to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    pub user_id: i64,
    pub username: String,
    /// The account's token version at issue: a ticket dies with the tokens.
    #[serde(default)]
    pub version: i64,
    /// The API key the ticket was taken with, if any.
    #[serde(default)]
    pub key_id: Option<String>,
}

/// Single-use tickets that authorise one WebSocket handshake.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// Keep `ticket` for `claims` until `valid_for` has passed.
    async fn put(
        &self,
        ticket: &str,
        claims: &TicketClaims,
        valid_for: Duration,
    ) -> Result<(), String>;
    /// Remove and return the ticket's claims if it is still valid; a second
    /// call with the same ticket, on any replica, gets `None`.
    async fn take(&self, ticket: &str) -> Result<Option<TicketClaims>, String>;
}

/// Per-user token buckets for chat requests. A request takes one token; a
/// refused one takes none.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Take a token for `user_id`, or `Err(seconds to wait)`.
    async fn acquire(&self, user_id: i64) -> Result<(), u64>;
}
