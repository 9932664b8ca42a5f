//! Peers: other nodes of the same installation that this node hands
//! generation to and lends its own capacity to.
//!
//! A peer is known by the URL of its peer listener and the SHA-256
//! fingerprint of its certificate's public key (SPKI); both are parsed here,
//! at the edge, before anything is stored or dialled.

use crate::error::CoreError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A registered peer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    /// `https://host:port` of the peer's listener, without a trailing slash.
    pub url: String,
    /// Lower-case hex SHA-256 of the peer certificate's SPKI (64 digits).
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
}

/// How this node sees a peer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Reported its load within the staleness limit.
    Up,
    /// Stopped reporting (or never did since this node started).
    Down,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Up => "up",
            PeerState::Down => "down",
        }
    }
}

/// A node's load, as `GET /api/v1/peer/load` shows it and as peers push it
/// to each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// This node's id: its certificate fingerprint.
    pub scheduler_id: String,
    /// Generations waiting for a worker.
    pub queue_depth: u32,
    /// Generations running now.
    pub active_workers: u32,
    /// Generations that can run at once.
    pub concurrency: u32,
    /// `(queue_depth + active_workers) / concurrency`: 0 idle, 1 full,
    /// above 1 queueing.
    pub load_factor: f64,
    /// Generated tokens per second over the last minute.
    pub tokens_per_second: f64,
    /// Models this node generates with itself.
    pub models: Vec<String>,
}

impl NodeLoad {
    pub fn factor(queue_depth: u32, active_workers: u32, concurrency: u32) -> f64 {
        f64::from(queue_depth + active_workers) / f64::from(concurrency.max(1))
    }
}

/// A peer with what this node knows of it now.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    pub url: String,
    pub fingerprint: String,
    pub state: PeerState,
    /// When its last load report arrived (or its last answer).
    pub last_seen: Option<DateTime<Utc>>,
    pub last_load: Option<NodeLoad>,
    /// Generations this node handed to it since start.
    pub handed_off: u64,
    pub created_at: DateTime<Utc>,
}

/// The worker telemetry of the original's peer API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    pub worker_uptime_seconds: f64,
    pub tasks_processed: u64,
    pub tasks_failed: u64,
    pub task_failure_rate: f64,
    pub observed_at: DateTime<Utc>,
    /// Who reported it: a node id, or a name the reporter chose.
    pub source: String,
}

/// Longest accepted peer URL.
pub const PEER_URL_MAX: usize = 512;

/// Parse a peer URL: `https://host[:port]`, no path, query, user or
/// fragment; returned without a trailing slash.
pub fn parse_peer_url(raw: &str) -> Result<String, CoreError> {
    let bad = |m: &str| CoreError::validation("url", m.to_string());
    let url = raw.trim().trim_end_matches('/');
    if url.is_empty() {
        return Err(bad("url is required"));
    }
    if url.len() > PEER_URL_MAX {
        return Err(bad("url is too long"));
    }
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(bad(
            "url must start with https:// (peers talk over mutual TLS)",
        ));
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ', '\\']) {
        return Err(bad("url must be https://host[:port] with nothing after"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return Err(bad("url has an unclosed [ in its host"));
        };
        match after {
            "" => (h, None),
            a => match a.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err(bad("url must be https://host[:port] with nothing after")),
            },
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_control()) {
        return Err(bad("url has no host"));
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |p| p == 0)
    {
        return Err(bad("url has an invalid port"));
    }
    Ok(url.to_ascii_lowercase())
}

/// Parse a fingerprint: 64 hex digits, with or without `:` separators and
/// a `sha256:` prefix; returned as lower-case hex.
pub fn parse_fingerprint(raw: &str) -> Result<String, CoreError> {
    let t = raw.trim();
    let t = t
        .strip_prefix("sha256:")
        .or_else(|| t.strip_prefix("SHA256:"))
        .unwrap_or(t);
    let hex: String = t.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CoreError::validation(
            "fingerprint",
            "fingerprint is required: the SHA-256 of the peer's public key, 64 hex digits \
             (`mongars peer identity` on the peer prints it)",
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_host_and_port_only() {
        assert_eq!(
            parse_peer_url(" https://Node-B.lan:8443/ ").unwrap(),
            "https://node-b.lan:8443"
        );
        assert_eq!(
            parse_peer_url("https://[::1]:9000").unwrap(),
            "https://[::1]:9000"
        );
        assert!(parse_peer_url("https://10.0.0.2").is_ok());
        for bad in [
            "",
            "http://node:8443",
            "https://",
            "https://node:8443/api",
            "https://user@node",
            "https://node:0",
            "https://node:99999",
            "https://node:x",
            "node:8443",
        ] {
            assert!(parse_peer_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_are_64_hex_digits() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_fingerprint(&hex).unwrap(), "ab".repeat(32));
        let colons = vec!["ab"; 32].join(":");
        assert_eq!(
            parse_fingerprint(&format!("sha256:{colons}")).unwrap(),
            "ab".repeat(32)
        );
        for bad in ["", "abc", &"zz".repeat(32), &"ab".repeat(33)] {
            let e = parse_fingerprint(bad).unwrap_err();
            assert_eq!(e.code(), "request.validation");
        }
    }

    #[test]
    fn load_factor_counts_waiting_and_running_per_slot() {
        assert_eq!(NodeLoad::factor(0, 0, 1), 0.0);
        assert_eq!(NodeLoad::factor(2, 2, 2), 2.0);
        assert_eq!(NodeLoad::factor(1, 0, 0), 1.0);
    }
}
