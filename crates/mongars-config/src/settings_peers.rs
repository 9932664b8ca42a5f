//! Settings of peers: the peer listener, the load exchange, hand-off and
//! discovery (`[peers]`).

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The name a model profile uses for "a peer" in its backend list.
pub const PEERS_BACKEND: &str = "peers";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSettings {
    /// Start the peer listener and the load exchange.
    pub enabled: bool,
    pub host: String,
    pub port: u16,
    /// Seconds between two load reports to every peer.
    pub push_interval_secs: u64,
    /// A peer without a report for this long is down.
    pub stale_after_secs: u64,
    /// Generations allowed to wait for the local engine before one is
    /// handed to a less loaded peer.
    pub handoff_queue: u32,
    /// Generations the local engine runs at once, for the load figures;
    /// 0: `llm.embedded.parallel`.
    pub concurrency: u32,
    /// Only peers serving this model are given work; empty: any.
    pub model: String,
    /// Attempts again on the same peer after a transient failure before
    /// the next choice (another peer, or this node) is tried.
    pub retries: u32,
    /// This node's certificate and key (PEM), for installations whose CA
    /// signs node certificates; empty: generated in `data_dir/peer`.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The installation's CA (PEM): peers whose certificate it signed are
    /// accepted without registration (needed for discovery).
    pub ca_file: PathBuf,
    /// Peers known in advance (registered at start like `mongars peer add`).
    pub static_peers: Vec<StaticPeer>,
    /// A DNS name whose addresses are peers, such as a Kubernetes headless
    /// Service; empty: no discovery.
    pub discovery_dns: String,
    /// Peer port of discovered addresses; 0: `peers.port`.
    pub discovery_port: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticPeer {
    pub url: String,
    pub fingerprint: String,
}

pub(crate) fn validate(s: &crate::Settings, check: &mut dyn FnMut(bool, &str, String)) {
    let p = &s.peers;
    check(
        (1..=300).contains(&p.push_interval_secs),
        "peers.push_interval_secs",
        "must be between 1 and 300".into(),
    );
    check(
        p.stale_after_secs > p.push_interval_secs && p.stale_after_secs <= 3600,
        "peers.stale_after_secs",
        "must be more than peers.push_interval_secs and at most 3600".into(),
    );
    check(
        p.handoff_queue <= 1024,
        "peers.handoff_queue",
        "must be at most 1024".into(),
    );
    check(
        p.retries <= 5,
        "peers.retries",
        "must be at most 5 (a failing peer's request moves on to the next choice)".into(),
    );
    check(
        p.concurrency <= 1024,
        "peers.concurrency",
        "must be at most 1024 (0: llm.embedded.parallel)".into(),
    );
    check(
        p.cert_file.as_os_str().is_empty() == p.key_file.as_os_str().is_empty(),
        "peers.cert_file",
        "peers.cert_file and peers.key_file go together".into(),
    );
    check(
        p.discovery_dns.is_empty() || !p.ca_file.as_os_str().is_empty(),
        "peers.discovery_dns",
        "discovered peers are trusted through the installation's CA: set peers.ca_file".into(),
    );
    check(
        !p.enabled || p.port == 0 || p.port != s.server.port || p.host != s.server.host,
        "peers.port",
        "must differ from server.port: the peer listener is a port of its own".into(),
    );
    for (i, sp) in p.static_peers.iter().enumerate() {
        if let Err(e) = shape::url(&sp.url) {
            check(false, &format!("peers.static_peers[{i}].url"), e);
        }
        if let Err(e) = shape::fingerprint(&sp.fingerprint) {
            check(false, &format!("peers.static_peers[{i}].fingerprint"), e);
        }
    }
    let uses_peers = s.llm.active_profile().is_some_and(|prof| {
        [&prof.general, &prof.coding]
            .iter()
            .any(|r| r.backends.iter().any(|b| b == PEERS_BACKEND))
    });
    check(
        !uses_peers || p.enabled,
        "peers.enabled",
        format!(
            "profile {:?} names \"peers\": enable [peers]",
            s.llm.profile
        ),
    );
}

/// Light checks of peer URLs and fingerprints (the server parses them again
/// with the core's rules; the configuration crate does not depend on it).
mod shape {
    pub fn url(u: &str) -> Result<(), String> {
        let rest = u
            .strip_prefix("https://")
            .ok_or("must start with https://")?;
        if rest.trim_end_matches('/').is_empty() || rest.trim_end_matches('/').contains('/') {
            return Err("must be https://host[:port]".into());
        }
        Ok(())
    }

    pub fn fingerprint(f: &str) -> Result<(), String> {
        let hex: String = f
            .trim()
            .trim_start_matches("sha256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(())
        } else {
            Err("must be 64 hex digits (`mongars peer identity` on the peer prints it)".into())
        }
    }
}
