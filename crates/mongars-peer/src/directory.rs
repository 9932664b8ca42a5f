//! The node's peer service as the admin API and the command line use it,
//! and the node as the router's `peers` pool.

use crate::node::PeerNode;
use async_trait::async_trait;
use mongars_core::domain::{
    ModelRole, NodeLoad, PeerRecord, PeerView, Telemetry, parse_fingerprint, parse_peer_url,
};
use mongars_core::error::CoreError;
use mongars_core::ports::PeerDirectory;
use mongars_llm::router::{BackendPool, GuardedBackend};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Most telemetry sources kept.
const MAX_SOURCES: usize = 256;

/// The node behind an `Arc`, as the ports see it.
pub struct Peers(pub Arc<PeerNode>);

#[async_trait]
impl BackendPool for Peers {
    fn name(&self) -> &str {
        "peers"
    }

    async fn pick(&self, _role: ModelRole, local_follows: bool) -> Vec<Arc<GuardedBackend>> {
        self.0.choose(local_follows).await
    }

    fn members(&self) -> Vec<Arc<GuardedBackend>> {
        self.0.members().iter().map(|m| m.guarded.clone()).collect()
    }
}

#[async_trait]
impl PeerDirectory for Peers {
    fn node_id(&self) -> String {
        self.0.node_id().to_string()
    }

    async fn register(&self, url: &str, fingerprint: &str) -> Result<PeerView, CoreError> {
        let url = parse_peer_url(url)?;
        let fingerprint = parse_fingerprint(fingerprint)?;
        if fingerprint == self.0.node_id() {
            return Err(CoreError::validation(
                "fingerprint",
                "that is this node's own fingerprint",
            ));
        }
        let record = PeerRecord {
            url: url.clone(),
            fingerprint,
            created_at: self.0.clock.now(),
        };
        self.0.repo().upsert(&record).await?;
        self.0.sync().await?;
        tracing::info!(peer = %url, "peer registered");
        self.list()
            .await?
            .into_iter()
            .find(|p| p.url == url)
            .ok_or(CoreError::NotFound("peer"))
    }

    async fn unregister(&self, url: &str) -> Result<(), CoreError> {
        let url = parse_peer_url(url)?;
        if !self.0.repo().remove(&url).await? {
            return Err(CoreError::NotFound("peer"));
        }
        self.0.sync().await?;
        tracing::info!(peer = %url, "peer unregistered");
        Ok(())
    }

    async fn list(&self) -> Result<Vec<PeerView>, CoreError> {
        Ok(self
            .0
            .members()
            .iter()
            .filter(|m| !m.is_self.load(Ordering::Relaxed))
            .map(|m| {
                let last = m.status.last();
                PeerView {
                    url: m.url.clone(),
                    fingerprint: m.fingerprint(),
                    state: m.status.state(),
                    last_seen: last.as_ref().map(|(at, _)| *at),
                    last_load: last.map(|(_, l)| l),
                    handed_off: m.handed_off.load(Ordering::Relaxed),
                    created_at: m.created_at,
                }
            })
            .collect())
    }

    async fn load(&self) -> NodeLoad {
        self.0.own_load().await
    }

    fn telemetry(&self) -> Vec<Telemetry> {
        let mut out = vec![self.0.own_telemetry()];
        out.extend(
            self.0
                .telemetry
                .lock()
                .expect("telemetry")
                .values()
                .cloned(),
        );
        out
    }

    fn record_telemetry(&self, report: Telemetry) -> Result<(), CoreError> {
        let bad = |field, m: &str| Err(CoreError::validation(field, m.to_string()));
        let source = report.source.trim();
        if source.is_empty() || source.len() > 128 || source.chars().any(char::is_control) {
            return bad("source", "source must be 1 to 128 printable characters");
        }
        if !report.worker_uptime_seconds.is_finite() || report.worker_uptime_seconds < 0.0 {
            return bad(
                "worker_uptime_seconds",
                "must be a number of seconds, not negative",
            );
        }
        if !(0.0..=1.0).contains(&report.task_failure_rate) {
            return bad("task_failure_rate", "must be between 0 and 1");
        }
        if report.tasks_failed > report.tasks_processed {
            return bad("tasks_failed", "cannot exceed tasks_processed");
        }
        if source == self.0.node_id() {
            return bad("source", "that is this node's own id");
        }
        let mut all = self.0.telemetry.lock().expect("telemetry");
        if !all.contains_key(source) && all.len() >= MAX_SOURCES {
            // The stalest source makes room.
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, t)| t.observed_at)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        let source = source.to_string();
        all.insert(source.clone(), Telemetry { source, ..report });
        Ok(())
    }
}
