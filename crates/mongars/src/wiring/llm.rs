//! Building the generation router from settings.
//!
//! The active profile names, per role, an ordered list of backends:
//! `embedded` (the in-process engine, loaded once and only when used) or a
//! name from `[llm.backends]`. Each distinct (backend, model) pair becomes one
//! guarded backend with its own breaker and metrics label: the backend's name,
//! or `name@model` when a role overrides the model.

use crate::hardware::tuning::tuned;
use anyhow::Context;
use mongars_config::{
    EMBEDDED_BACKEND, EmbeddedWeights, PEERS_BACKEND, RemoteKind, RoleSettings, Settings,
};
use mongars_core::domain::{PerRole, SamplingParams};
use mongars_core::ports::{Clock, LlmBackend};
use mongars_llm::embedded::{EmbeddedBackend, EmbeddedConfig, Weights, load_backend};
use mongars_llm::remote::ollama::Ollama;
use mongars_llm::remote::openai::OpenAi;
use mongars_llm::remote::ray::{Ray, RayOptions};
use mongars_llm::remote::{RemoteBackend, RemoteConfig};
use mongars_llm::resilience::{Backoff, BreakerPolicy, Timeouts};
use mongars_llm::router::{BackendPool, CachePolicy, GuardedBackend, Guards, RoleChain, Router};
use mongars_metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// Engine settings, automatic values chosen for this machine.
pub fn embedded_config(settings: &Settings) -> EmbeddedConfig {
    let settings = tuned(settings);
    let e = &settings.llm.embedded;
    EmbeddedConfig {
        model_path: e.model_path.clone(),
        threads: e.threads as usize,
        context_tokens: e.context_tokens,
        parallel: e.parallel as usize,
        queue_capacity: e.queue_capacity as usize,
        max_queue_wait: max_queue_wait(&settings),
        move_kept_turns: e.move_kept_turns,
        weights: match e.weights {
            EmbeddedWeights::File => Weights::AsFile,
            EmbeddedWeights::Q8_0 => Weights::Q8_0 {
                dir: widened_dir(&settings),
            },
        },
    }
}

/// Where the model's widened copy is kept (`llm.embedded.weights`).
pub fn widened_dir(settings: &Settings) -> std::path::PathBuf {
    settings.data_dir.join("models")
}

/// `llm.embedded.max_queue_wait_ms`, kept to three quarters of the
/// first-token limit: an admitted chat must have time left to start.
fn max_queue_wait(settings: &Settings) -> Duration {
    let asked = settings.llm.embedded.max_queue_wait_ms;
    let first_token = settings.llm.resilience.first_token_timeout_ms;
    let cap = first_token.saturating_mul(3) / 4;
    Duration::from_millis(if asked == 0 { 0 } else { asked.min(cap).max(1) })
}

/// Load the embedded engine. Loading a model is blocking work, so it runs
/// off the async runtime.
pub async fn load_embedded(settings: &Settings) -> anyhow::Result<Arc<EmbeddedBackend>> {
    let cfg = embedded_config(settings);
    let backend = tokio::task::spawn_blocking(move || load_backend(&cfg))
        .await
        .context("model loading task failed")?
        .context("llm.embedded.model_path")?;
    Ok(Arc::new(backend))
}

/// Whether the active profile uses the embedded engine.
pub fn uses_embedded(settings: &Settings) -> bool {
    settings.llm.active_profile().is_some_and(|p| {
        [&p.general, &p.coding]
            .iter()
            .any(|r| r.backends.iter().any(|b| b == EMBEDDED_BACKEND))
    })
}

/// The router of the active profile. `embedded` is the engine to use for the
/// `embedded` backend (loaded from settings when `None` and needed).
pub async fn router_from_settings(
    settings: &Settings,
    embedded: Option<Arc<dyn LlmBackend>>,
    metrics: &Metrics,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<Router>> {
    router_with_peers(settings, embedded, None, metrics, clock).await
}

/// [`router_from_settings`], with `peers` where a profile names `peers`
/// (without it, a command that does not join the peers leaves them out).
pub async fn router_with_peers(
    settings: &Settings,
    embedded: Option<Arc<dyn LlmBackend>>,
    peers: Option<Arc<dyn BackendPool>>,
    metrics: &Metrics,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<Router>> {
    let llm = &settings.llm;
    let profile = llm
        .active_profile()
        .with_context(|| format!("llm.profile: no profile {:?}", llm.profile))?;
    let embedded = match embedded {
        Some(e) => Some(e),
        None if uses_embedded(settings) => {
            Some(load_embedded(settings).await? as Arc<dyn LlmBackend>)
        }
        None => None,
    };
    let r = &llm.resilience;
    let Guards {
        timeouts,
        backoff,
        breaker,
        ..
    } = guards(settings, 0);
    let tls = crate::wiring::net::outbound_tls(settings)?;
    let mut built: Vec<(String, Arc<GuardedBackend>)> = Vec::new();
    let mut chain = |role: &RoleSettings| -> anyhow::Result<RoleChain> {
        let mut backends = Vec::new();
        let mut pools: Vec<(usize, Arc<dyn BackendPool>)> = Vec::new();
        for name in &role.backends {
            if name == PEERS_BACKEND {
                if let Some(p) = &peers {
                    pools.push((backends.len(), p.clone()));
                }
                continue;
            }
            let (label, raw, kind, guards) = if name == EMBEDDED_BACKEND {
                let raw = embedded
                    .clone()
                    .context("the embedded engine is not loaded")?;
                let guards = Guards {
                    timeouts,
                    retries: 0,
                    backoff,
                    breaker,
                };
                (name.clone(), raw, "embedded", guards)
            } else {
                let b = llm
                    .backends
                    .get(name)
                    .with_context(|| format!("no backend {name:?} in [llm.backends]"))?;
                let model = if role.model.is_empty() {
                    &b.model
                } else {
                    &role.model
                };
                let label = if *model == b.model {
                    name.clone()
                } else {
                    format!("{name}@{model}")
                };
                if let Some((_, g)) = built.iter().find(|(l, _)| *l == label) {
                    backends.push(g.clone());
                    continue;
                }
                let cfg = RemoteConfig {
                    name: label.clone(),
                    urls: b.urls(),
                    model: model.clone(),
                    api_key: b.api_key.is_set().then(|| b.api_key.expose().to_string()),
                    context_tokens: b.context_tokens as usize,
                    connect_timeout: Duration::from_millis(r.connect_timeout_ms),
                    tls: tls.clone(),
                };
                let guards = Guards {
                    timeouts,
                    retries: b.retries,
                    backoff,
                    breaker,
                };
                let raw: Arc<dyn LlmBackend> = match b.kind {
                    RemoteKind::Ollama => {
                        Arc::new(RemoteBackend::new(cfg, Ollama { stream: b.stream })?)
                    }
                    RemoteKind::Openai => {
                        Arc::new(RemoteBackend::new(cfg, OpenAi { stream: b.stream })?)
                    }
                    RemoteKind::Ray => {
                        let options = RayOptions {
                            stream: b.stream,
                            scale_cycles: b.scale_cycles,
                            backoff,
                            budget: Duration::from_millis(r.first_token_timeout_ms),
                        };
                        let ray = Ray::new(options, metrics.ray.clone());
                        Arc::new(RemoteBackend::new(cfg, ray)?)
                    }
                };
                let kind = match b.kind {
                    RemoteKind::Ollama => "ollama",
                    RemoteKind::Openai => "openai",
                    RemoteKind::Ray => "ray",
                };
                (label, raw, kind, guards)
            };
            if let Some((_, g)) = built.iter().find(|(l, _)| *l == label) {
                backends.push(g.clone());
                continue;
            }
            let g = GuardedBackend::new(raw, kind, guards, metrics, clock.clone());
            built.push((label, g.clone()));
            backends.push(g);
        }
        Ok(RoleChain {
            backends,
            pools,
            sampling: sampling(role),
        })
    };
    let chains = PerRole {
        general: chain(&profile.general).context("llm.profiles.*.general")?,
        coding: chain(&profile.coding).context("llm.profiles.*.coding")?,
    };
    let cache = llm.cache.enabled.then(|| CachePolicy {
        ttl: Duration::from_secs(llm.cache.ttl_secs),
        max_entries: llm.cache.max_entries as usize,
    });
    let router = Router::new(
        llm.profile.clone(),
        llm.profiles.keys().cloned().collect(),
        chains,
        cache,
        metrics.clone(),
        clock.clone(),
    )?;
    Ok(Arc::new(router))
}

/// The resilience settings as every backend is guarded, with `retries`.
/// The same limits for every backend, the embedded engine and peers
/// included: a queue can be long, and a turn must end in bounded time.
pub fn guards(settings: &Settings, retries: u32) -> Guards {
    let r = &settings.llm.resilience;
    Guards {
        timeouts: Timeouts {
            first_token: Duration::from_millis(r.first_token_timeout_ms),
            between_tokens: Duration::from_millis(r.inter_token_timeout_ms),
            total: Duration::from_millis(r.total_timeout_ms),
        },
        retries,
        backoff: Backoff {
            base: Duration::from_millis(r.retry_base_ms),
            max: Duration::from_millis(r.retry_max_ms),
        },
        breaker: BreakerPolicy {
            failures: r.breaker_failures,
            window: Duration::from_millis(r.breaker_window_ms),
            cooldown: Duration::from_millis(r.breaker_cooldown_ms),
        },
    }
}

fn sampling(role: &RoleSettings) -> SamplingParams {
    SamplingParams {
        temperature: role.temperature as f32,
        top_p: role.top_p as f32,
        max_tokens: role.max_tokens,
        stop: role.stop.clone(),
        seed: None,
    }
}

/// Sampling defaults of each role of the active profile.
pub fn sampling_defaults(settings: &Settings) -> PerRole<SamplingParams> {
    match settings.llm.active_profile() {
        Some(p) => PerRole {
            general: sampling(&p.general),
            coding: sampling(&p.coding),
        },
        None => PerRole::both(SamplingParams::greedy(256)),
    }
}
