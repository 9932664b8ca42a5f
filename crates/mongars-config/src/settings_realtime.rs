//! Settings of realtime sessions and of Redis, shared by replicas.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealtimeSettings {
    pub enabled: bool,
    pub ticket_ttl_secs: u64,
    pub ticket_skew_secs: u64,
    pub queue_frames: usize,
    pub max_sockets_per_user: usize,
    pub snapshot_items: u32,
    pub ping_interval_secs: u64,
    pub pong_timeout_secs: u64,
    pub max_frame_bytes: usize,
    pub tickets_per_minute: u32,
    pub ticket_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    pub url: Secret,
    pub key_prefix: String,
    pub timeout_ms: u64,
}

pub(crate) fn validate(s: &crate::Settings, check: &mut dyn FnMut(bool, &str, String)) {
    let r = &s.realtime;
    check(
        (1..=3600).contains(&r.ticket_ttl_secs),
        "realtime.ticket_ttl_secs",
        "must be between 1 and 3600".into(),
    );
    check(
        r.ticket_skew_secs <= 30,
        "realtime.ticket_skew_secs",
        "must be at most 30".into(),
    );
    check(
        (1..=4096).contains(&r.queue_frames),
        "realtime.queue_frames",
        "must be between 1 and 4096".into(),
    );
    check(
        r.max_sockets_per_user >= 1,
        "realtime.max_sockets_per_user",
        "must be at least 1".into(),
    );
    check(
        r.snapshot_items <= 100,
        "realtime.snapshot_items",
        "must be at most 100".into(),
    );
    check(
        r.ping_interval_secs >= 1 && r.pong_timeout_secs > r.ping_interval_secs,
        "realtime.pong_timeout_secs",
        "ping_interval_secs must be at least 1 and pong_timeout_secs longer than it".into(),
    );
    check(
        (1024..=16 * 1024 * 1024).contains(&r.max_frame_bytes),
        "realtime.max_frame_bytes",
        "must be between 1024 and 16777216".into(),
    );
    check(
        r.tickets_per_minute >= 1 && r.ticket_burst >= 1,
        "realtime.tickets_per_minute",
        "tickets_per_minute and ticket_burst must be at least 1".into(),
    );
    let url = s.redis.url.expose();
    check(
        url.is_empty() || url.starts_with("redis://") || url.starts_with("unix://"),
        "redis.url",
        "must be empty or a redis:// or unix:// URL (TLS is not built in)".into(),
    );
    check(
        !s.redis.key_prefix.is_empty()
            && s.redis
                .key_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)),
        "redis.key_prefix",
        "must be non-empty letters, digits, '-', '_', '.' or ':'".into(),
    );
    check(
        (10..=60_000).contains(&s.redis.timeout_ms),
        "redis.timeout_ms",
        "must be between 10 and 60000".into(),
    );
    for origin in &s.server.allowed_origins {
        check(
            origin_ok(origin),
            "server.allowed_origins",
            format!("{origin:?} is not an origin: use scheme://host[:port], no path"),
        );
    }
}

/// `http(s)://host[:port]` with nothing after.
fn origin_ok(o: &str) -> bool {
    let Some((scheme, rest)) = o.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}
