//! The router: an ordered failover list of guarded backends per model role.
//!
//! A request goes to the role's backends in order, skipping those whose
//! circuit is open. A failure before the first token (every guarded backend
//! fails that way: see [`crate::resilience`]) moves on to the next; a failure
//! after it reaches the client as an error event on the stream. When no
//! backend answers, the error is `Exhausted` with each attempt's kind, or
//! `Timeout` when every backend tried timed out (a stall, not a fault), or
//! `Tls` when every one refused the TLS handshake. An
//! optional cache replays answers to identical deterministic requests.
//!
//! A chain may also hold a [`BackendPool`] (the node's peers): at its place
//! in the chain the pool names, per request, the guarded backends to try
//! there (the least loaded peers first, or none while the local engine has
//! room). Requests a node serves for a peer never reach a pool, so work is
//! handed on at most once.

mod cache;
mod fleet;
mod guarded;

pub use cache::{CachePolicy, ResponseCache};
pub use guarded::{GuardedBackend, Guards};

tokio::task_local! {
    static FOR_PEER: ();
}

/// Run `f` (a generation for another node) with every pool skipped.
pub async fn serving_peer<F: std::future::Future>(f: F) -> F::Output {
    FOR_PEER.scope((), f).await
}

fn serving_a_peer() -> bool {
    FOR_PEER.try_with(|_| ()).is_ok()
}

/// Backends chosen per request at one place in a chain.
#[async_trait]
pub trait BackendPool: Send + Sync {
    /// The pool's name in the chain (`peers`).
    fn name(&self) -> &str;
    /// What to try here for `role`, best first; empty to go on with the
    /// rest of the chain. `local_follows`: a local backend comes later in
    /// the chain (so the pool may leave the request to it).
    async fn pick(&self, role: ModelRole, local_follows: bool) -> Vec<Arc<GuardedBackend>>;
    /// Every member now, for health and the backends view.
    fn members(&self) -> Vec<Arc<GuardedBackend>>;
}

use async_trait::async_trait;
use mongars_core::domain::{
    ChatMessage, FinishReason, GenerationEvent, GenerationRequest, ModelRole, PerRole,
    SamplingParams,
};
use mongars_core::ports::{
    BackendHealth, Clock, GenerationStream, LlmBackend, LlmError, Reservation,
};
use mongars_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// A role's backends in failover order, and its sampling defaults.
pub struct RoleChain {
    pub backends: Vec<Arc<GuardedBackend>>,
    /// Pools, each with the index in `backends` it comes before
    /// (`backends.len()`: after every fixed backend).
    pub pools: Vec<(usize, Arc<dyn BackendPool>)>,
    pub sampling: SamplingParams,
}

impl RoleChain {
    /// What to try for `request`, in order.
    async fn attempts(&self, role: ModelRole) -> Vec<Arc<GuardedBackend>> {
        if self.pools.is_empty() || serving_a_peer() {
            return self.backends.clone();
        }
        let mut out = Vec::with_capacity(self.backends.len() + 2);
        for i in 0..=self.backends.len() {
            for (at, pool) in &self.pools {
                if *at == i {
                    let local_follows = i < self.backends.len();
                    for b in pool.pick(role, local_follows).await {
                        if !out.iter().any(|o| Arc::ptr_eq(o, &b)) {
                            out.push(b);
                        }
                    }
                }
            }
            if let Some(b) = self.backends.get(i) {
                out.push(b.clone());
            }
        }
        out
    }
}

/// The context window assumed for a chain of pools only (no local model to
/// ask): the smallest a supported model has.
const DEFAULT_POOL_CONTEXT: usize = 2048;

pub struct Router {
    profile: String,
    profiles: Vec<String>,
    chains: PerRole<RoleChain>,
    /// Every distinct backend, in first-use order.
    all: Vec<Arc<GuardedBackend>>,
    cache: Option<Arc<ResponseCache>>,
    metrics: Metrics,
    context_window: usize,
    model: String,
}

impl Router {
    /// `profile` and `profiles` are names, for the models view.
    pub fn new(
        profile: String,
        profiles: Vec<String>,
        chains: PerRole<RoleChain>,
        cache: Option<CachePolicy>,
        metrics: Metrics,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, LlmError> {
        let mut all: Vec<Arc<GuardedBackend>> = Vec::new();
        for role in ModelRole::ALL {
            let chain = chains.get(role);
            if chain.backends.is_empty() && chain.pools.is_empty() {
                return Err(LlmError::Unavailable(format!("role {role} has no backend")));
            }
            for b in &chain.backends {
                if !all.iter().any(|a| Arc::ptr_eq(a, b)) {
                    all.push(b.clone());
                }
            }
        }
        let context_window = all
            .iter()
            .map(|b| b.backend.context_window())
            .min()
            .unwrap_or(0);
        let context_window = if context_window == 0 {
            DEFAULT_POOL_CONTEXT
        } else {
            context_window
        };
        let model = match chains.general.backends.first() {
            Some(b) => b.backend.model().to_string(),
            None => chains
                .general
                .pools
                .first()
                .map_or_else(String::new, |(_, p)| p.name().to_string()),
        };
        Ok(Self {
            profile,
            profiles,
            cache: cache.map(|p| Arc::new(ResponseCache::new(p, metrics.cache.clone(), clock))),
            chains,
            all,
            metrics,
            context_window,
            model,
        })
    }

    pub fn backends_in_order(&self) -> &[Arc<GuardedBackend>] {
        &self.all
    }

    /// Every pool of every role, once each.
    fn pools(&self) -> Vec<Arc<dyn BackendPool>> {
        let mut out: Vec<Arc<dyn BackendPool>> = Vec::new();
        for role in ModelRole::ALL {
            for (_, p) in &self.chains.get(role).pools {
                if !out.iter().any(|o| Arc::ptr_eq(o, p)) {
                    out.push(p.clone());
                }
            }
        }
        out
    }

    /// The fixed backends, then the pools' current members.
    fn everyone(&self) -> Vec<Arc<GuardedBackend>> {
        let mut all = self.all.clone();
        for p in self.pools() {
            all.extend(p.members());
        }
        all
    }

    async fn route(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let chain = &self.chains.get(request.role).attempts(request.role).await;
        if chain.is_empty() {
            return Err(LlmError::Unavailable(
                "no backend for this role is available now".into(),
            ));
        }
        let mut attempts = Vec::new();
        let mut all_overloaded = true;
        let mut failures: Vec<LlmError> = Vec::new();
        let mut retry_after = 0;
        for (i, b) in chain.iter().enumerate() {
            match b.backend.generate(request.clone()).await {
                Ok(stream) => {
                    if i > 0 {
                        tracing::info!(role = %request.role, backend = %b.name, "served by a fallback backend");
                    }
                    return Ok(stream);
                }
                Err(e @ LlmError::PromptTooLong { .. }) => return Err(e),
                Err(e) => {
                    match e {
                        LlmError::Overloaded { retry_after_secs } => {
                            retry_after = retry_after.max(retry_after_secs)
                        }
                        _ => all_overloaded = false,
                    }
                    attempts.push(format!("{}: {}", b.name, e.kind()));
                    if !matches!(e, LlmError::CircuitOpen) {
                        tracing::warn!(role = %request.role, backend = %b.name, error = %e, "backend failed before the first token");
                        failures.push(e);
                    }
                    if i + 1 < chain.len() {
                        self.metrics
                            .llm
                            .failovers
                            .with_label_values(&[request.role.as_str(), &b.name])
                            .inc();
                    }
                }
            }
        }
        if all_overloaded {
            // Busy, not broken: the client should come back shortly.
            return Err(LlmError::Overloaded {
                retry_after_secs: retry_after.max(1),
            });
        }
        // When every backend tried failed the same telling way, the client
        // hears that: stalled (a timeout), or a TLS certificate refused.
        let all = |kind: &str| !failures.is_empty() && failures.iter().all(|e| e.kind() == kind);
        if all("timeout") {
            return Err(LlmError::Timeout(format!(
                "every backend timed out ({})",
                attempts.join(", ")
            )));
        }
        if all("tls") {
            return Err(failures.swap_remove(0));
        }
        Err(LlmError::Exhausted { attempts })
    }
}

#[async_trait]
impl LlmBackend for Router {
    fn name(&self) -> &str {
        "router"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn context_window(&self) -> usize {
        self.context_window
    }

    /// The largest count among the role's backends, so the prompt fits
    /// whichever of them ends up answering.
    async fn count_tokens(
        &self,
        role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        let mut most = vec![0; prompts.len()];
        if self.chains.get(role).backends.is_empty() {
            // Only peers: count as a typical tokenizer would.
            return Ok(prompts
                .iter()
                .map(|p| mongars_core::ports::estimate_prompt_tokens(p))
                .collect());
        }
        for b in &self.chains.get(role).backends {
            let counts = b.backend.count_tokens(role, prompts).await?;
            for (m, c) in most.iter_mut().zip(counts) {
                *m = (*m).max(c);
            }
        }
        Ok(most)
    }

    /// The place of the first backend of the role's chain, in the order
    /// `generate` tries them, that has one (breakers open are passed over);
    /// refused when each is busy or open and at least one is busy. Never
    /// refused while peers may take the request.
    fn reserve(&self, role: ModelRole) -> Result<Reservation, u64> {
        let chain = self.chains.get(role);
        if !chain.pools.is_empty() {
            return Ok(Reservation::default());
        }
        let mut wait = None;
        for b in &chain.backends {
            if !b.breaker.admits() {
                continue;
            }
            match b.backend.reserve(role) {
                Ok(place) => return Ok(place),
                Err(secs) => wait = Some(wait.unwrap_or(0).max(secs)),
            }
        }
        wait.map_or(Ok(Reservation::default()), Err)
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let key = self.cache.as_ref().and(ResponseCache::key(&request));
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some((text, mut usage)) = cache.get(key)
        {
            usage.time_to_first_token = Duration::ZERO;
            usage.total = Duration::ZERO;
            usage.queued = Duration::ZERO;
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let _ = tx.send(Ok(GenerationEvent::Delta(text))).await;
            let _ = tx.send(Ok(GenerationEvent::Done(usage))).await;
            return Ok(rx);
        }
        let mut stream = self.route(request).await?;
        let Some(key) = key else {
            return Ok(stream);
        };
        let Some(cache) = self.cache.clone() else {
            return Ok(stream);
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut text = String::new();
            while let Some(event) = stream.recv().await {
                match &event {
                    Ok(GenerationEvent::Delta(d)) => text.push_str(d),
                    Ok(GenerationEvent::Done(u)) if u.finish_reason != FinishReason::Cancelled => {
                        cache.put(key.clone(), text.clone(), u.clone());
                    }
                    Ok(GenerationEvent::Done(_)) => {}
                    Err(_) => {}
                }
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        let mut details = Vec::new();
        let mut healthy = false;
        for b in &self.everyone() {
            let h = b.health().await;
            let usable = h.healthy && b.breaker.admits();
            healthy |= usable;
            let state = if !h.healthy {
                h.detail
            } else if usable {
                "up".to_string()
            } else {
                "circuit open".to_string()
            };
            details.push(format!("{}: {state}", b.name));
        }
        BackendHealth {
            healthy,
            detail: details.join(", "),
            active: 0,
            queued: 0,
        }
    }
}
