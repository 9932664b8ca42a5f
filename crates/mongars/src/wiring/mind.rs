//! Memory, embeddings, personality and research, assembled from settings.

use anyhow::Context;
use mongars_config::{EmbedPrecision, EmbedderKind, Settings};
use mongars_core::conversation::Mind;
use mongars_core::curiosity::{ResearchOptions, Researcher};
use mongars_core::memory::{MemoryOptions, MemoryService, WorkingMemory, WorkingMemoryOptions};
use mongars_core::personality::PersonalityService;
use mongars_core::ports::{
    Clock, Embedder, MemoryRepository, ProfileRepository, ResearchProvider, TurnRepository,
};
use mongars_embed::{
    LazyMiniLm, MiniLm, MiniLmOptions, Precision, RemoteEmbedder, RemoteEmbedderConfig, RemoteKind,
};
use mongars_research::{Documents, PageFetcher, PageOptions, SearxNg};
use mongars_store::{Database, SqlMemoryRepository, SqlTurnRepository};
use std::sync::Arc;
use std::time::Duration;

/// The embedder named in settings. The in-process model is loaded on a
/// blocking thread (about 90 MB read from disk); with memory off, where no
/// chat turn embeds anything, it is loaded on first use instead.
pub async fn embedder_from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn Embedder>> {
    let settings = &crate::hardware::tuning::tuned(settings);
    let e = &settings.embeddings;
    Ok(match e.kind {
        EmbedderKind::Embedded => {
            let options = MiniLmOptions {
                dir: e.model_dir.clone(),
                max_tokens: e.max_tokens as usize,
                batch_size: e.batch_size as usize,
                precision: match e.precision {
                    EmbedPrecision::Int8 => Precision::Int8,
                    EmbedPrecision::F32 => Precision::F32,
                    EmbedPrecision::F16 => Precision::F16,
                    EmbedPrecision::Bf16 => Precision::Bf16,
                    EmbedPrecision::Auto => Precision::fastest(),
                },
                cache_entries: e.cache_entries as usize,
                ..MiniLmOptions::new(&e.model_dir)
            };
            if !settings.memory.enabled {
                return Ok(Arc::new(
                    LazyMiniLm::new(options).context("embeddings.model_dir")?,
                ));
            }
            let model = tokio::task::spawn_blocking(move || MiniLm::load(&options))
                .await
                .context("embedder loader")?
                .context("embeddings.model_dir")?;
            Arc::new(model)
        }
        kind => Arc::new(
            RemoteEmbedder::new(RemoteEmbedderConfig {
                kind: if kind == EmbedderKind::Ollama {
                    RemoteKind::Ollama
                } else {
                    RemoteKind::OpenAi
                },
                url: e.url.clone(),
                model: e.model.clone(),
                dimensions: e.dimensions as usize,
                api_key: e.api_key.is_set().then(|| e.api_key.expose().to_string()),
                timeout: Duration::from_millis(e.timeout_ms),
                tls: crate::wiring::net::outbound_tls(settings)?,
            })
            .context("embeddings")?,
        ),
    })
}

fn days(n: u32) -> Option<Duration> {
    (n > 0).then(|| Duration::from_secs(u64::from(n) * 86_400))
}

/// Research providers, built only when research is enabled: with it off,
/// nothing that could open a connection exists.
fn researcher(settings: &Settings) -> anyhow::Result<Option<Arc<Researcher>>> {
    let r = &settings.research;
    if !r.enabled {
        return Ok(None);
    }
    let tls = crate::wiring::net::outbound_tls(settings)?;
    let pages = if r.fetch_pages {
        Some(Arc::new(
            PageFetcher::new(PageOptions {
                timeout: Duration::from_millis(r.page_timeout_ms),
                max_bytes: r.max_page_bytes as usize,
                user_agent: r.user_agent.clone(),
                tls: tls.clone(),
            })
            .map_err(anyhow::Error::msg)?,
        ))
    } else {
        None
    };
    let mut providers: Vec<Arc<dyn ResearchProvider>> = Vec::new();
    let mut documents: Option<Arc<dyn ResearchProvider>> = None;
    if !r.documents_url.is_empty() {
        let d: Arc<dyn ResearchProvider> = Arc::new(
            Documents::new(&r.documents_url, &r.user_agent, &tls).map_err(anyhow::Error::msg)?,
        );
        providers.push(d.clone());
        documents = Some(d);
    }
    if !r.searxng_url.is_empty() {
        providers.push(Arc::new(
            SearxNg::new(&r.searxng_url, &r.user_agent, &tls, pages).map_err(anyhow::Error::msg)?,
        ));
    }
    Ok(Some(Arc::new(Researcher::new(
        providers,
        documents,
        ResearchOptions {
            max_results: r.max_results as usize,
            provider_timeout: Duration::from_millis(r.provider_timeout_ms),
            gap_similarity: r.gap_similarity,
        },
    ))))
}

/// Everything a turn may draw on, and the profile service the API reads.
pub fn mind_from_settings(
    settings: &Settings,
    db: &Database,
    embedder: Option<Arc<dyn Embedder>>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<(Mind, Arc<PersonalityService>)> {
    let m = &settings.memory;
    let turns: Arc<dyn TurnRepository> = Arc::new(SqlTurnRepository::new(db.clone()));
    let store = Arc::new(SqlMemoryRepository::new(db.clone()));
    let records: Arc<dyn MemoryRepository> = store.clone();
    let profiles_repo: Arc<dyn ProfileRepository> = store;
    let working = WorkingMemory::new(
        turns,
        clock.clone(),
        WorkingMemoryOptions {
            max_turns: m.working.max_turns,
            ttl: Duration::from_secs(m.working.ttl_secs),
        },
    );
    let memory = match (m.enabled, embedder) {
        (true, Some(embedder)) => Some(Arc::new(MemoryService::new(
            embedder,
            records.clone(),
            clock.clone(),
            MemoryOptions {
                recall_k: m.recall_k as usize,
                core_facts: m.core_facts as usize,
                min_similarity: m.min_similarity,
                dedup_similarity: m.dedup_similarity,
                recall_max_tokens: m.recall_max_tokens as usize,
                fact_ttl: days(m.fact_ttl_days),
                turn_ttl: days(m.turn_ttl_days),
                index_cache_users: m.index_cache_users as usize,
            },
        ))),
        _ => None,
    };
    let profiles = Arc::new(PersonalityService::new(profiles_repo, clock.clone()));
    let mind = Mind {
        working,
        records: Some(records),
        memory,
        personality: m.personality.then(|| profiles.clone()),
        research: researcher(settings)?,
        after: Default::default(),
    };
    Ok((mind, profiles))
}
