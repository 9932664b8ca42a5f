//! Shared state of the HTTP layer: one `Clone` struct of `Arc`s.

use mongars_core::auth::AuthService;
use mongars_core::conversation::ConversationService;
use mongars_core::curiosity::Researcher;
use mongars_core::memory::MemoryService;
use mongars_core::personality::PersonalityService;
use mongars_core::ports::{Embedder, HealthCheck, ModelFleet};
use mongars_core::suggest::Suggester;
use mongars_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// HTTP behaviour taken from settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub trust_forwarded_for: bool,
    /// Serve `GET /metrics` on this port (to admins and the scrape token).
    pub metrics_enabled: bool,
    /// Bearer token accepted on `/metrics` besides admin tokens.
    pub metrics_token: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub conversation: Arc<ConversationService>,
    /// Checked by `/ready`, in order.
    pub readiness: Arc<[Arc<dyn HealthCheck>]>,
    /// The generation backends as operators see them.
    pub fleet: Arc<dyn ModelFleet>,
    pub metrics: Metrics,
    /// Sentence embeddings (`/v1/embeddings`, suggestions); `None` when the
    /// model could not be loaded and memory is off.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Style profiles, readable even when learning them is off.
    pub profiles: Arc<PersonalityService>,
    /// Long-term memory; `None` when memory is off.
    pub memory: Option<Arc<MemoryService>>,
    /// Research providers; `None` when research is off.
    pub research: Option<Arc<Researcher>>,
    /// Ranking of suggested actions; `None` without an embedding model.
    pub suggester: Option<Arc<Suggester>>,
    /// Tickets, sockets and the event bus.
    pub realtime: Arc<mongars_core::realtime::RealtimeService>,
    /// Origins allowed to open sockets and make CORS requests.
    pub origins: Arc<crate::origin::OriginPolicy>,
    /// Host names state-changing requests may be addressed to.
    pub hosts: Arc<crate::host::HostPolicy>,
    pub http: HttpOptions,
    pub training: TrainingState,
    /// This node's peers; `None` when `peers.enabled` is off.
    pub peers: Option<Arc<dyn mongars_core::ports::PeerDirectory>>,
}

/// Curation and the adapter registry.
#[derive(Clone)]
pub struct TrainingState {
    pub curation: Arc<mongars_core::training::curation::CurationService>,
    pub adapters: Arc<mongars_core::training::registry::AdapterRegistry>,
    pub runs: Arc<mongars_core::training::runs::RunQueue>,
}
