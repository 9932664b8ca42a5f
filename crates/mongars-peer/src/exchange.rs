//! The load exchange: every `peers.push_interval_secs` a node re-reads the
//! peer list (so a peer registered or removed on another replica is seen),
//! looks up the discovery name, and sends its load to every peer; each
//! answer carries the peer's own load. A peer whose reports stop for
//! longer than `peers.stale_after_secs` is down (on the injected clock).

use crate::node::PeerNode;
use mongars_core::domain::PeerState;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Peer URLs for the addresses `name` resolves to (a Kubernetes headless
/// Service has one per ready pod).
pub async fn discover(name: &str, port: u16) -> Result<Vec<String>, String> {
    let addrs = tokio::net::lookup_host((name, port))
        .await
        .map_err(|e| format!("cannot resolve {name}: {e}"))?;
    let mut urls: Vec<String> = addrs
        .map(|a| match a {
            std::net::SocketAddr::V4(v4) => format!("https://{}:{}", v4.ip(), v4.port()),
            std::net::SocketAddr::V6(v6) => format!("https://[{}]:{}", v6.ip(), v6.port()),
        })
        .collect();
    urls.sort();
    urls.dedup();
    Ok(urls)
}

/// One round: discovery, member list, load to every peer.
pub async fn exchange_once(node: &Arc<PeerNode>) {
    if let Some((name, port)) = &node.options.discovery {
        match discover(name, *port).await {
            Ok(urls) => node.set_discovered(urls),
            Err(e) => tracing::warn!(error = %e, "peer discovery failed"),
        }
    }
    if let Err(e) = node.sync().await {
        tracing::warn!(error = %e, "cannot read the peer list");
    }
    let own = node.own_load().await;
    // A report older than one interval is worth nothing: wait no longer.
    let timeout = node.options.push_interval.max(Duration::from_secs(1));
    let pushes = node.members().into_iter().map(|m| {
        let own = own.clone();
        let node = node.clone();
        async move {
            if m.is_self.load(Ordering::Relaxed) {
                return;
            }
            match m.client.push_load(&own, timeout).await {
                Ok(theirs) if theirs.scheduler_id == node.node_id() => {
                    // A discovered address of this very node.
                    m.is_self.store(true, Ordering::Relaxed);
                }
                Ok(theirs) => {
                    if m.discovered {
                        *m.fingerprint.lock().expect("fingerprint") = theirs.scheduler_id.clone();
                    }
                    m.status.record(theirs);
                    node.metrics
                        .peers
                        .reports
                        .with_label_values(&["sent", "ok"])
                        .inc();
                }
                Err(e) => {
                    tracing::debug!(peer = %m.url, error = %e, "load report not delivered");
                    node.metrics
                        .peers
                        .reports
                        .with_label_values(&["sent", "failed"])
                        .inc();
                }
            }
        }
    });
    futures_util::future::join_all(pushes).await;
    publish_states(node);
}

/// `mongars_peer_up` for every member, and a log line when one changes.
pub fn publish_states(node: &PeerNode) {
    for m in node.members() {
        let up = m.status.state() == PeerState::Up;
        let gauge = node.metrics.peers.up.with_label_values(&[&m.url]);
        if (gauge.get() == 1) != up {
            if up {
                tracing::info!(peer = %m.url, "peer up");
            } else {
                tracing::warn!(peer = %m.url, "peer down: no load report within the staleness limit");
            }
        }
        gauge.set(i64::from(up));
    }
}

/// Run the exchange until the task is aborted.
pub async fn run(node: Arc<PeerNode>) {
    let mut tick = tokio::time::interval(node.options.push_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        exchange_once(&node).await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn discovery_turns_addresses_into_peer_urls() {
        let urls = super::discover("localhost", 8443).await.unwrap();
        assert!(!urls.is_empty());
        assert!(
            urls.iter()
                .all(|u| u == "https://127.0.0.1:8443" || u == "https://[::1]:8443"),
            "{urls:?}"
        );
        assert!(super::discover("no-such-host.invalid", 1).await.is_err());
    }
}
