//! The node among its peers, built from `[peers]`: its identity, the peer
//! list, the pool the router hands generation to, and the peer listener's
//! socket (bound here, so a port in use fails start-up).

use anyhow::Context;
use mongars_config::Settings;
use mongars_core::ports::{Clock, LlmBackend};
use mongars_metrics::Metrics;
use mongars_peer::trust::ClusterCa;
use mongars_peer::{NodeIdentity, PeerNode, PeerOptions, Tally};
use mongars_store::{Database, SqlPeerRepository};
use std::sync::Arc;
use std::time::Duration;

/// This node's identity: the CA-signed files of settings, or the key pair
/// generated in the data directory.
pub fn identity(settings: &Settings) -> anyhow::Result<NodeIdentity> {
    let p = &settings.peers;
    let id = if p.cert_file.as_os_str().is_empty() {
        NodeIdentity::load_or_create(&settings.data_dir)
    } else {
        NodeIdentity::from_files(&p.cert_file, &p.key_file)
    };
    id.map_err(anyhow::Error::msg)
        .context("peers: node identity")
}

/// Generations the local engine runs at once.
pub fn concurrency(settings: &Settings) -> u32 {
    match settings.peers.concurrency {
        0 => crate::wiring::llm::embedded_config(settings)
            .parallel
            .max(1) as u32,
        n => n,
    }
}

/// The peer node and its listener, when `peers.enabled`.
pub async fn peer_node(
    settings: &Settings,
    db: &Database,
    local: Option<Arc<dyn LlmBackend>>,
    tally: Arc<Tally>,
    metrics: &Metrics,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Option<(Arc<PeerNode>, tokio::net::TcpListener)>> {
    let p = &settings.peers;
    if !p.enabled {
        return Ok(None);
    }
    let identity = identity(settings)?;
    let ca = if p.ca_file.as_os_str().is_empty() {
        None
    } else {
        Some(
            ClusterCa::from_pem_file(&p.ca_file)
                .map_err(anyhow::Error::msg)
                .context("peers.ca_file")?,
        )
    };
    let options = PeerOptions {
        push_interval: Duration::from_secs(p.push_interval_secs),
        stale_after: Duration::from_secs(p.stale_after_secs),
        handoff_queue: p.handoff_queue,
        concurrency: concurrency(settings),
        connect_timeout: Duration::from_millis(settings.llm.resilience.connect_timeout_ms),
        model: p.model.clone(),
        guards: crate::wiring::llm::guards(settings, p.retries),
        static_peers: p
            .static_peers
            .iter()
            .map(|s| {
                let url = mongars_core::domain::parse_peer_url(&s.url)?;
                let fp = mongars_core::domain::parse_fingerprint(&s.fingerprint)?;
                Ok((url, fp))
            })
            .collect::<Result<_, mongars_core::error::CoreError>>()
            .context("peers.static_peers")?,
        discovery: (!p.discovery_dns.is_empty()).then(|| {
            let port = if p.discovery_port == 0 {
                p.port
            } else {
                p.discovery_port
            };
            (p.discovery_dns.clone(), port)
        }),
    };
    let addr = format!("{}:{}", p.host, p.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (peers.host / peers.port)"))?;
    let node = PeerNode::new(
        identity,
        ca,
        Arc::new(SqlPeerRepository::new(db.clone())),
        options,
        clock.clone(),
        metrics.clone(),
        local,
        tally,
    );
    node.start()
        .await
        .map_err(anyhow::Error::msg)
        .context("peers: the peer list")?;
    tracing::info!(node_id = %node.node_id(), address = %listener.local_addr()?, "peer listener ready");
    Ok(Some((node, listener)))
}
