//! This node among its peers: the member list (registered peers, the static
//! list from settings, and peers found by discovery), each a guarded backend
//! with its status; the choice of a peer per request; the admin view.

use crate::client::PeerClient;
use crate::identity::NodeIdentity;
use crate::status::PeerStatus;
use crate::tally::Tally;
use crate::trust::{ClusterCa, Registered, client_config};
use chrono::{DateTime, Utc};
use mongars_core::domain::{NodeLoad, PeerRecord, Telemetry};
use mongars_core::ports::{Clock, LlmBackend, PeerRepository};
use mongars_llm::router::{GuardedBackend, Guards};
use mongars_metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How a node works with its peers (from `[peers]`).
#[derive(Debug, Clone)]
pub struct PeerOptions {
    pub push_interval: Duration,
    pub stale_after: Duration,
    /// Generations allowed to wait locally before one goes to a peer.
    pub handoff_queue: u32,
    /// Generations the local engine runs at once.
    pub concurrency: u32,
    pub connect_timeout: Duration,
    /// A peer must list this model to be given work (empty: any).
    pub model: String,
    pub guards: Guards,
    /// Peers from settings, `(url, fingerprint)`, registered at start.
    pub static_peers: Vec<(String, String)>,
    /// A DNS name whose addresses are peers (a headless Service), and
    /// their peer port; `None`: no discovery.
    pub discovery: Option<(String, u16)>,
}

/// One peer this node may call.
pub struct Member {
    pub url: String,
    /// Registered fingerprint; for a discovered peer, the one its answers
    /// carried (the CA vouched for it).
    pub fingerprint: Mutex<String>,
    pub created_at: DateTime<Utc>,
    pub discovered: bool,
    pub client: Arc<PeerClient>,
    pub guarded: Arc<GuardedBackend>,
    pub status: Arc<PeerStatus>,
    pub handed_off: Arc<AtomicU64>,
    /// A discovered address that turned out to be this node.
    pub is_self: std::sync::atomic::AtomicBool,
}

impl Member {
    pub fn fingerprint(&self) -> String {
        self.fingerprint.lock().expect("fingerprint").clone()
    }
}

pub struct PeerNode {
    pub identity: NodeIdentity,
    pub(crate) registered: Registered,
    pub(crate) ca: Option<ClusterCa>,
    repo: Arc<dyn PeerRepository>,
    members: RwLock<BTreeMap<String, Arc<Member>>>,
    pub options: PeerOptions,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    /// The node's own engine, for its load.
    local: Option<Arc<dyn LlmBackend>>,
    models: Vec<String>,
    pub(crate) tally: Arc<Tally>,
    pub(crate) telemetry: Mutex<BTreeMap<String, Telemetry>>,
    started: Instant,
    turn: AtomicUsize,
    /// Serialises member-list rebuilds.
    sync_lock: tokio::sync::Mutex<()>,
    /// Addresses found by the last discovery.
    discovered: Mutex<Vec<String>>,
}

impl PeerNode {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identity: NodeIdentity,
        ca: Option<ClusterCa>,
        repo: Arc<dyn PeerRepository>,
        options: PeerOptions,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
        local: Option<Arc<dyn LlmBackend>>,
        tally: Arc<Tally>,
    ) -> Arc<Self> {
        let models = local
            .as_ref()
            .map(|l| vec![l.model().to_string()])
            .unwrap_or_default();
        Arc::new(Self {
            identity,
            registered: Registered::default(),
            ca,
            repo,
            members: RwLock::new(BTreeMap::new()),
            options,
            clock,
            metrics,
            local,
            models,
            tally,
            telemetry: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
            turn: AtomicUsize::new(0),
            sync_lock: tokio::sync::Mutex::new(()),
            discovered: Mutex::new(Vec::new()),
        })
    }

    pub fn node_id(&self) -> &str {
        &self.identity.fingerprint
    }

    pub fn repo(&self) -> &Arc<dyn PeerRepository> {
        &self.repo
    }

    pub fn registered(&self) -> Registered {
        self.registered.clone()
    }

    pub fn members(&self) -> Vec<Arc<Member>> {
        self.members
            .read()
            .expect("members")
            .values()
            .cloned()
            .collect()
    }

    /// The member whose certificate has `fingerprint`.
    pub fn member_by_fingerprint(&self, fingerprint: &str) -> Option<Arc<Member>> {
        self.members()
            .into_iter()
            .find(|m| m.fingerprint() == fingerprint)
    }

    /// Register the static peers of settings (kept in the database like
    /// any other), then build the member list.
    pub async fn start(&self) -> Result<(), String> {
        let known = self.repo.list().await.map_err(|e| e.to_string())?;
        for (url, fingerprint) in &self.options.static_peers {
            if known
                .iter()
                .any(|k| k.url == *url && k.fingerprint == *fingerprint)
            {
                continue;
            }
            let record = PeerRecord {
                url: url.clone(),
                fingerprint: fingerprint.clone(),
                created_at: self.clock.now(),
            };
            self.repo.upsert(&record).await.map_err(|e| e.to_string())?;
        }
        self.sync().await.map_err(|e| e.to_string())
    }

    /// Rebuild the member list from the database and the last discovery:
    /// new peers get a client, removed ones stop at once, and the set of
    /// fingerprints the listener accepts follows.
    pub async fn sync(&self) -> Result<(), mongars_core::ports::RepoError> {
        let _one = self.sync_lock.lock().await;
        let records = self.repo.list().await?;
        let discovered = self.discovered.lock().expect("discovered").clone();
        let mut next: BTreeMap<String, Arc<Member>> = BTreeMap::new();
        let current = self.members.read().expect("members").clone();
        for r in &records {
            let keep = current
                .get(&r.url)
                .filter(|m| !m.discovered && m.fingerprint() == r.fingerprint);
            let member = match keep {
                Some(m) => m.clone(),
                None => match self.member(&r.url, Some(r.fingerprint.clone()), r.created_at) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!(peer = %r.url, error = %e, "cannot build a client for the peer");
                        continue;
                    }
                },
            };
            next.insert(r.url.clone(), member);
        }
        for url in discovered {
            if next.contains_key(&url) {
                continue;
            }
            let member = match current.get(&url).filter(|m| m.discovered) {
                Some(m) => m.clone(),
                None => match self.member(&url, None, self.clock.now()) {
                    Ok(m) => m,
                    Err(_) => continue,
                },
            };
            next.insert(url, member);
        }
        for (url, _) in current.iter().filter(|(u, _)| !next.contains_key(*u)) {
            let _ = self.metrics.peers.up.remove_label_values(&[url]);
            tracing::info!(peer = %url, "peer removed");
        }
        self.registered.replace(
            next.values()
                .map(|m| m.fingerprint())
                .filter(|f| !f.is_empty()),
        );
        *self.members.write().expect("members") = next;
        Ok(())
    }

    fn member(
        &self,
        url: &str,
        fingerprint: Option<String>,
        created_at: DateTime<Utc>,
    ) -> Result<Arc<Member>, String> {
        let discovered = fingerprint.is_none();
        if discovered && self.ca.is_none() {
            return Err("a discovered peer needs peers.ca_file".into());
        }
        let tls = client_config(&self.identity, fingerprint.clone(), self.ca.clone())?;
        let status = Arc::new(PeerStatus::new(
            self.options.stale_after,
            self.clock.clone(),
        ));
        let handed_off = Arc::new(AtomicU64::new(0));
        let client = Arc::new(PeerClient::new(
            url,
            tls,
            self.options.connect_timeout,
            status.clone(),
            handed_off.clone(),
            self.metrics.peers.handoffs.with_label_values(&[url]),
        )?);
        let guarded = GuardedBackend::new(
            client.clone(),
            "peer",
            self.options.guards,
            &self.metrics,
            self.clock.clone(),
        );
        Ok(Arc::new(Member {
            url: url.to_string(),
            fingerprint: Mutex::new(fingerprint.unwrap_or_default()),
            created_at,
            discovered,
            client,
            guarded,
            status,
            handed_off,
            is_self: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// This node's load now.
    pub async fn own_load(&self) -> NodeLoad {
        let (active, queued) = match &self.local {
            Some(l) => {
                let h = l.health().await;
                (h.active as u32, h.queued as u32)
            }
            None => (0, 0),
        };
        let concurrency = self.options.concurrency.max(1);
        NodeLoad {
            scheduler_id: self.node_id().to_string(),
            queue_depth: queued,
            active_workers: active,
            concurrency,
            load_factor: NodeLoad::factor(queued, active, concurrency),
            tokens_per_second: self.tally.tokens_per_second(),
            models: self.models.clone(),
        }
    }

    /// This node's telemetry now.
    pub fn own_telemetry(&self) -> Telemetry {
        let processed = self.tally.processed();
        let failed = self.tally.failed();
        Telemetry {
            worker_uptime_seconds: self.started.elapsed().as_secs_f64(),
            tasks_processed: processed,
            tasks_failed: failed,
            task_failure_rate: if processed == 0 {
                0.0
            } else {
                failed as f64 / processed as f64
            },
            observed_at: self.clock.now(),
            source: self.node_id().to_string(),
        }
    }

    /// Peers to try for a request, best first (see [`BackendPool`]).
    ///
    /// [`BackendPool`]: mongars_llm::router::BackendPool
    pub(crate) async fn choose(&self, local_follows: bool) -> Vec<Arc<GuardedBackend>> {
        let local = if local_follows && self.local.is_some() {
            let own = self.own_load().await;
            let waiting = own.queue_depth + own.active_workers;
            if waiting < own.concurrency + self.options.handoff_queue {
                return Vec::new();
            }
            Some(f64::from(waiting + 1) / f64::from(own.concurrency))
        } else {
            None
        };
        let mut candidates: Vec<(f64, u64, Arc<Member>)> = Vec::new();
        for m in self.members() {
            if m.is_self.load(Ordering::Relaxed) || !m.guarded.breaker.admits() {
                continue;
            }
            let Some(load) = m.status.live_load() else {
                continue;
            };
            if !self.options.model.is_empty() && !load.models.contains(&self.options.model) {
                continue;
            }
            let busy = load.queue_depth + load.active_workers + m.client.inflight() as u32;
            let factor = f64::from(busy + 1) / f64::from(load.concurrency.max(1));
            if local.is_some_and(|l| factor >= l) {
                continue;
            }
            candidates.push((factor, m.handed_off.load(Ordering::Relaxed), m));
        }
        // Least loaded first; among equals, the one given least so far,
        // then in turn.
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let n = candidates.len().max(1);
        let mut indexed: Vec<_> = candidates.into_iter().enumerate().collect();
        indexed.sort_by(|(ia, a), (ib, b)| {
            a.0.total_cmp(&b.0)
                .then(a.1.cmp(&b.1))
                .then(((ia + turn) % n).cmp(&((ib + turn) % n)))
        });
        indexed
            .into_iter()
            .map(|(_, c)| c.2.guarded.clone())
            .collect()
    }

    pub(crate) fn set_discovered(&self, urls: Vec<String>) {
        *self.discovered.lock().expect("discovered") = urls;
    }
}
