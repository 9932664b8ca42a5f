//! Event fan-out over Redis pub/sub. Every replica publishes its users'
//! events on one channel and delivers what it hears to its own sockets, its
//! own events included, so order per user is the order of publication.
//!
//! A message is `<user id> <server frame JSON>`. Messages are checked as they
//! arrive; anything else on the channel is dropped with a warning. Pub/sub
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
    outbox: mpsc::Sender<Event>,
    dropped: AtomicU64,
}

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
        })
    }
}

impl EventBus for RedisBus {
    fn publish(&self, event: Event) {
        if self.outbox.try_send(event).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed);
            if n.is_power_of_two() {
                tracing::warn!(dropped = n + 1, "event outbox full; events dropped");
            }
        }
    }
}

async fn publish(redis: Redis, channel: String, mut rx: mpsc::Receiver<Event>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for event in batch.drain(..) {
            pipe.cmd("PUBLISH")
                .arg(&channel)
                .arg(format!("{} {}", event.user_id, event.frame))
                .ignore();
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
                Some((user_id, frame)) => {
                    hub.deliver(user_id, frame);
                }
                None => tracing::warn!("malformed event on the redis channel; dropped"),
            },
        }
    }
}

/// `<user id> <JSON object>` -> its parts, or `None`.
fn parse(payload: &[u8]) -> Option<(i64, &str)> {
    let text = std::str::from_utf8(payload).ok()?;
    let (user, frame) = text.split_once(' ')?;
    let user_id = user.parse().ok()?;
    let value: serde_json::Value = serde_json::from_str(frame).ok()?;
    value.get("type")?.as_str()?;
    Some((user_id, frame))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn only_well_formed_messages_are_delivered() {
        let ok = br#"42 {"id":"x","type":"chat.message","data":{}}"#;
        assert_eq!(parse(ok).map(|(u, _)| u), Some(42));
        for bad in [
            &b"42"[..],
            b"x {\"type\":\"a\"}",
            b"42 not json",
            b"42 {\"id\":1}",
            b"42 [1,2]",
            b"\xff\xfe",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
