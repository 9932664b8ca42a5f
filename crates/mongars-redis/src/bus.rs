//! Event fan-out over Redis pub/sub. Every replica publishes its users'
//! events on one channel and delivers what it hears to its own sockets, its
//! own events included, so order per user is the order of publication.
//!
//! A message is `<user id> <server frame JSON>`, or `<user id> !revoke` to
//! close that user's sockets (account disabled, password changed): on the
//! same channel, so a revocation is never overtaken by events published
//! before it. Messages are checked as they arrive; anything else on the
//! channel is dropped with a warning. Pub/sub
//! keeps nothing: events published while a replica is reconnecting are not
//! replayed to it (clients catch up from `history.snapshot` on reconnect).

use crate::Redis;
use futures_util::StreamExt;
use mongars_core::ports::{Event, EventBus};
use mongars_core::realtime::Hub;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Events waiting to be published before new ones are dropped.
const OUTBOX: usize = 8192;
/// Events sent to Redis in one round trip, at most.
const BATCH: usize = 256;

pub struct RedisBus {
    outbox: mpsc::Sender<Outgoing>,
    dropped: AtomicU64,
    hub: Weak<Hub>,
}

/// What the bus sends, in order.
enum Outgoing {
    Event(Event),
    Revoke(i64),
}

/// What a message on the channel asks for.
#[derive(Debug, PartialEq)]
enum Incoming<'a> {
    Event(i64, &'a str),
    Revoke(i64),
}

const REVOKE: &str = "!revoke";

impl RedisBus {
    /// Start publishing to and listening on `<prefix>:events`, delivering
    /// to `hub`. The tasks end when the bus and the hub are dropped.
    pub fn start(redis: Redis, hub: &Arc<Hub>) -> Arc<Self> {
        let channel = redis.key(&["events"]);
        let (outbox, rx) = mpsc::channel(OUTBOX);
        tokio::spawn(publish(redis.clone(), channel.clone(), rx));
        tokio::spawn(listen(redis, channel, Arc::downgrade(hub)));
        Arc::new(Self {
            outbox,
            dropped: AtomicU64::new(0),
            hub: Arc::downgrade(hub),
        })
    }
}

impl EventBus for RedisBus {
    fn publish(&self, event: Event) {
        self.send(Outgoing::Event(event));
    }

    fn revoke(&self, user_id: i64) {
        // Local sockets close at once, whatever becomes of Redis; the other
        // replicas hear it on the channel.
        if let Some(hub) = self.hub.upgrade() {
            hub.revoke(user_id);
        }
        self.send(Outgoing::Revoke(user_id));
    }
}

impl RedisBus {
    fn send(&self, message: Outgoing) {
        if self.outbox.try_send(message).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(dropped = n + 1, "event outbox full; events dropped");
            }
        }
    }
}

async fn publish(redis: Redis, channel: String, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for message in batch.drain(..) {
            let payload = match message {
                Outgoing::Event(event) => format!("{} {}", event.user_id, event.frame),
                Outgoing::Revoke(user_id) => format!("{user_id} {REVOKE}"),
            };
            pipe.cmd("PUBLISH").arg(&channel).arg(payload).ignore();
        }
        let mut con = redis.commands.clone();
        let sent = tokio::time::timeout(redis.timeout, pipe.query_async::<()>(&mut con)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not publish events"),
            Err(_) => tracing::warn!("publishing events timed out"),
        }
    }
}

async fn listen(redis: Redis, channel: String, hub: Weak<Hub>) {
    let mut backoff = Duration::from_millis(100);
    while hub.strong_count() > 0 {
        match subscribe(&redis, &channel).await {
            Ok(pubsub) => {
                backoff = Duration::from_millis(100);
                tracing::info!("listening for events on redis");
                relay(pubsub, &hub).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to redis; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn subscribe(redis: &Redis, channel: &str) -> Result<redis::aio::PubSub, String> {
    let connect = async {
        let mut pubsub = redis.client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    match tokio::time::timeout(redis.timeout, connect).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// Deliver messages until the connection drops or the hub is gone.
async fn relay(pubsub: redis::aio::PubSub, hub: &Weak<Hub>) {
    let mut messages = pubsub.into_on_message();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let Some(hub) = hub.upgrade() else { return };
        match next {
            Err(_) => continue, // quiet channel: look again whether the hub lives
            Ok(None) => {
                tracing::warn!("redis subscription lost; reconnecting");
                return;
            }
            Ok(Some(msg)) => match parse(msg.get_payload_bytes()) {
                Some(Incoming::Event(user_id, frame)) => {
                    hub.deliver(user_id, frame);
                }
                Some(Incoming::Revoke(user_id)) => {
                    let closed = hub.revoke(user_id);
                    if closed > 0 {
                        tracing::info!(user_id, sockets = closed, "access revoked; sockets closed");
                    }
                }
                None => tracing::warn!("malformed event on the redis channel; dropped"),
            },
        }
    }
}

/// `<user id> <JSON object>` or `<user id> !revoke` -> what it asks, or `None`.
fn parse(payload: &[u8]) -> Option<Incoming<'_>> {
    let text = std::str::from_utf8(payload).ok()?;
    let (user, rest) = text.split_once(' ')?;
    let user_id = user.parse().ok()?;
    if rest == REVOKE {
        return Some(Incoming::Revoke(user_id));
    }
    let value: serde_json::Value = serde_json::from_str(rest).ok()?;
    value.get("type")?.as_str()?;
    Some(Incoming::Event(user_id, rest))
}

#[cfg(test)]
mod tests {
    use super::{Incoming, parse};

    #[test]
    fn only_well_formed_messages_are_delivered() {
        let ok = br#"42 {"id":"x","type":"chat.message","data":{}}"#;
        assert!(matches!(parse(ok), Some(Incoming::Event(42, _))));
        assert_eq!(parse(b"7 !revoke"), Some(Incoming::Revoke(7)));
        for bad in [
            &b"42"[..],
            b"x {\"type\":\"a\"}",
            b"42 not json",
            b"42 {\"id\":1}",
            b"42 [1,2]",
            b"\xff\xfe",
            b"x !revoke",
            b"7 !revoke-all",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
