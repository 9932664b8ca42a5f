//! Assembly of the application from settings. `mongars serve` and the tests
//! call the same [`build`], then [`serve`] on a listener of their choice.

use crate::jwt_key;
use crate::wiring::auth::{auth_service, bootstrap_from_settings};
use crate::wiring::database::open_database;
use axum::Router;
use mongars_config::Settings;
use mongars_core::auth::AuthService;
use mongars_core::conversation::Mind;
use mongars_core::ports::{Clock, Embedder, HealthCheck, LlmBackend};
use mongars_http::listener::ListenOptions;
use mongars_http::{AppState, HttpOptions};
use mongars_metrics::Metrics;
use mongars_store::{Database, DatabaseCheck, MigrationsCheck};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A built application: the router and what background work and commands need.
pub struct App {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub auth: Arc<AuthService>,
    pub router: Router,
    pub metrics: Metrics,
    /// The generation backends of the active profile.
    pub llm: Arc<mongars_llm::router::Router>,
    /// Memory, personality and research as the pipeline uses them.
    pub mind: Mind,
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Sockets of this process and the bus that feeds them.
    pub realtime: Arc<mongars_core::realtime::RealtimeService>,
    /// Curation and the adapter registry.
    pub training: mongars_http::TrainingState,
    /// Generation requests, for the training scheduler's idle test.
    pub activity: Arc<mongars_core::training::idle::Activity>,
    /// The embedded engine when this node runs it (training runs use its
    /// tokenizer).
    pub engine: Option<Arc<mongars_llm::embedded::EmbeddedBackend>>,
    /// This node among its peers, and its peer listener (`peers.enabled`).
    pub peers: Option<(Arc<mongars_peer::PeerNode>, TcpListener)>,
}

/// Parts chosen by the caller instead of built from settings (tests).
#[derive(Default, Clone)]
pub struct Overrides {
    /// The engine behind the `embedded` backend name.
    pub llm: Option<Arc<dyn LlmBackend>>,
    /// The embedder, instead of the one in `[embeddings]`.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// The clock of every service, instead of the system's.
    pub clock: Option<Arc<dyn Clock>>,
}

/// Open the database (migrating when configured), load the signing key and
/// the model, build the services and the router, and create the first admin
/// named in settings if there is no admin yet.
pub async fn build(settings: Settings) -> anyhow::Result<App> {
    build_with(settings, Overrides::default()).await
}

/// [`build`], with some parts chosen by the caller instead of loaded from
/// settings (tests use a scripted generation backend and a shared embedder
/// this way). Remote backends still come from settings.
pub async fn build_with(mut settings: Settings, overrides: Overrides) -> anyhow::Result<App> {
    let hardware = crate::hardware::HardwareProfile::detect();
    for c in crate::hardware::tuning::tune(&mut settings, &hardware) {
        tracing::info!(setting = c.setting, value = c.value, reason = %c.reason, "tuned");
    }
    let llm = overrides.llm;
    let clock = overrides.clock.unwrap_or_else(crate::wiring::system_clock);
    let db = open_database(&settings).await?;
    if settings.database.migrate_on_start {
        let applied = db.migrate().await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
    }
    let (key, source) = jwt_key::resolve(&settings)?;
    tracing::info!(source = ?source, "JWT signing key loaded");
    let auth = Arc::new(auth_service(&settings, &db, &key, clock.clone()).await?);
    if db.migration_status().await?.is_current() {
        bootstrap_from_settings(&settings, &auth).await?;
    } else {
        tracing::warn!(
            "the database schema is not current and database.migrate_on_start is off: \
             run `mongars migrate`; /ready answers 503 until then"
        );
    }

    let metrics = Metrics::new();
    if db.engine() == "sqlite" {
        metrics
            .sampled(
                "mongars_sqlite_heap_bytes",
                "Memory SQLite holds in this process: page caches, statements, schemas.",
                || mongars_store::sqlite_heap().0 as f64,
            )
            .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
    }
    // The embedded engine, when this node runs it, is also where adapters
    // are switched.
    let mut host: Option<Arc<dyn mongars_core::training::registry::AdapterHost>> = None;
    let mut engine = None;
    let llm = match llm {
        Some(l) => Some(l),
        None if crate::wiring::llm::uses_embedded(&settings) => {
            let loaded = crate::wiring::llm::load_embedded(&settings).await?;
            host = Some(Arc::new(crate::wiring::training::EngineHost(
                loaded.clone(),
            )));
            engine = Some(loaded.clone());
            Some(loaded as Arc<dyn LlmBackend>)
        }
        None => None,
    };
    let training = crate::wiring::training::training_state(&settings, &db, host, &clock);
    // What the local engine generates is counted for the peers' load figures.
    let tally = mongars_peer::Tally::new(clock.clone());
    let llm = llm.map(|l| tally.wrap(l));
    let peers =
        crate::wiring::peers::peer_node(&settings, &db, llm.clone(), tally, &metrics, &clock)
            .await?;
    let pool = peers.as_ref().map(|(node, _)| {
        Arc::new(mongars_peer::Peers(node.clone())) as Arc<dyn mongars_llm::router::BackendPool>
    });
    let router =
        crate::wiring::llm::router_with_peers(&settings, llm, pool, &metrics, &clock).await?;
    // Every generation request is seen by the training scheduler's idle test.
    let activity = Arc::new(mongars_core::training::idle::Activity::new(clock.clone()));
    let llm: Arc<dyn LlmBackend> = Arc::new(mongars_core::training::idle::Watched::new(
        router.clone(),
        activity.clone(),
    ));
    let embedder = match overrides.embedder {
        Some(e) => Some(e),
        None => match crate::wiring::mind::embedder_from_settings(&settings).await {
            Ok(e) => Some(e),
            Err(e) if settings.memory.enabled => return Err(e),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "no embedding model: /v1/embeddings and suggestions are unavailable");
                None
            }
        },
    };
    let (mind, profiles) =
        crate::wiring::mind::mind_from_settings(&settings, &db, embedder.clone(), &clock)?;
    let shared = crate::wiring::realtime::shared_from_settings(&settings, auth.clone(), &clock)?;
    let mut conversation = crate::wiring::conversation::conversation_service(
        &settings,
        &db,
        llm.clone(),
        shared.limiter,
        mind.clone(),
        &clock,
    );
    if settings.realtime.enabled {
        conversation = conversation.with_events(shared.realtime.bus().clone());
    }
    let conversation = Arc::new(conversation);

    let mut readiness: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(DatabaseCheck(db.clone())),
        Arc::new(MigrationsCheck(db.clone())),
        Arc::new(mongars_llm::LlmReadiness(llm)),
    ];
    readiness.extend(shared.health);
    let hosts =
        mongars_http::HostPolicy::new(&settings.server.allowed_hosts, &settings.server.host);
    let state = AppState {
        auth: auth.clone(),
        conversation,
        readiness: readiness.into(),
        fleet: router.clone(),
        metrics: metrics.clone(),
        embedder: embedder.clone(),
        profiles,
        memory: mind.memory.clone(),
        research: mind.research.clone(),
        suggester: embedder
            .clone()
            .map(|e| Arc::new(mongars_core::suggest::Suggester::new(e))),
        realtime: shared.realtime.clone(),
        origins: Arc::new(
            mongars_http::OriginPolicy::new(&settings.server.allowed_origins)
                .with_hosts(hosts.clone()),
        ),
        hosts: Arc::new(hosts),
        http: HttpOptions {
            body_limit_bytes: settings.server.body_limit_bytes,
            request_timeout: Duration::from_secs(settings.server.request_timeout_secs),
            trust_forwarded_for: settings.server.trust_forwarded_for,
            metrics_enabled: settings.metrics.enabled,
            metrics_token: scrape_token(&settings),
        },
        training: training.clone(),
        peers: peers.as_ref().map(|(node, _)| {
            Arc::new(mongars_peer::Peers(node.clone()))
                as Arc<dyn mongars_core::ports::PeerDirectory>
        }),
    };
    Ok(App {
        settings: Arc::new(settings),
        db,
        auth,
        router: mongars_http::router(state),
        metrics,
        llm: router,
        mind,
        embedder,
        realtime: shared.realtime,
        training,
        activity,
        engine,
        peers,
    })
}

/// Fail the turns that a stopped process left pending (see
/// [`crate::recovery`]). `mongars serve` runs this before it listens.
pub async fn recover_interrupted_turns(app: &App) {
    match crate::recovery::recover(&app.db, &app.settings).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(turns = n, "turns interrupted by an earlier stop failed"),
        Err(e) => tracing::warn!(error = %format!("{e:#}"), "recovering interrupted turns failed"),
    }
}

/// How often the training scheduler looks for an idle spell.
const TRAINING_POLL: Duration = Duration::from_secs(5);

/// Start the training scheduler when settings ask for it and this node
/// runs the embedded engine: its task and the admin list's refresher.
fn start_training(
    app: &App,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<(tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>)> {
    let engine = app.engine.clone()?;
    if !app.settings.training.scheduler {
        return None;
    }
    let bus = app
        .settings
        .realtime
        .enabled
        .then(|| app.realtime.bus().clone());
    let (notify, refresh) =
        crate::training::scheduler::notifier(bus, app.auth.clone(), app.metrics.clone());
    let ctx = crate::training::job::JobContext {
        settings: app.settings.clone(),
        runs: app.training.runs.repository().clone(),
        curation: app.training.curation.clone(),
        registry: app.training.adapters.clone(),
        engine,
        notify,
    };
    let scheduler = crate::training::scheduler::Scheduler {
        ctx,
        activity: app.activity.clone(),
        metrics: app.metrics.clone(),
        poll: TRAINING_POLL,
        stop,
    };
    Some((tokio::spawn(scheduler.run()), tokio::spawn(refresh)))
}

/// How often a node checks which adapter the registry says is active.
const ADAPTER_POLL: Duration = Duration::from_secs(10);

/// Serve until `shutdown` resolves, then finish requests in flight for at
/// most `server.shutdown_grace_secs`.
pub async fn serve(
    mut app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let peers = app.peers.take().map(|(node, listener)| {
        let llm: Arc<dyn LlmBackend> = Arc::new(mongars_core::training::idle::Watched::new(
            app.llm.clone(),
            app.activity.clone(),
        ));
        crate::background::start_peers(node, listener, llm)
    });
    let grace = Duration::from_secs(app.settings.server.shutdown_grace_secs);
    let recovery = tokio::spawn(crate::recovery::recovery_loop(
        app.db.clone(),
        app.settings.clone(),
        Duration::from_secs(app.settings.memory.purge_interval_secs),
    ));
    let purge = tokio::spawn(crate::background::purge_throttle_windows(app.auth.clone()));
    let forget = tokio::spawn(crate::background::purge_loop(
        app.mind.clone(),
        Duration::from_secs(app.settings.memory.purge_interval_secs),
    ));
    let release = tokio::spawn(crate::background::release_free_heap(
        crate::background::RELEASE_FREE_HEAP,
    ));
    let adapters = tokio::spawn(crate::background::follow_adapters(
        app.training.adapters.clone(),
        app.metrics.clone(),
        ADAPTER_POLL,
    ));
    let (stop_training, training_stops) = tokio::sync::watch::channel(false);
    let training = start_training(&app, training_stops);
    let side = crate::observe::start(&app.settings, &app.metrics).await?;
    let server = &app.settings.server;
    let options = ListenOptions {
        header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(server.idle_timeout_secs),
        max_connections: crate::limits::connection_cap(&app.settings),
        grace,
    };
    let shutdown = async move {
        shutdown.await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: finishing requests in flight"
        );
    };
    mongars_http::listener::serve(
        listener,
        app.router.clone(),
        options,
        app.metrics.http.clone(),
        shutdown,
    )
    .await;
    purge.abort();
    forget.abort();
    release.abort();
    adapters.abort();
    // Peers' generations in flight end with the peer listener.
    drop(peers);
    // A run training now pauses at its next step, checkpoint kept.
    stop_training.send_replace(true);
    if let Some((scheduler, refresh)) = training {
        refresh.abort();
        if tokio::time::timeout(grace, scheduler).await.is_err() {
            tracing::warn!("the training run did not pause within the grace period");
        }
    }
    recovery.abort();
    // What the last replies left to do (learning, trimming) still needs the
    // database: wait for it, within the grace period, before closing.
    let after = async {
        app.mind.after.settled().await;
        if let Some(memory) = &app.mind.memory {
            memory.settled().await;
        }
    };
    if tokio::time::timeout(grace, after).await.is_err() {
        tracing::warn!("work after replies still running at shutdown; stopping it");
    }
    crate::recovery::interrupt_own(&app.db).await;
    for task in side {
        task.abort();
    }
    app.db.close().await;
    Ok(())
}

fn scrape_token(settings: &Settings) -> Option<String> {
    let t = &settings.metrics.scrape_token;
    t.is_set().then(|| t.expose().to_string())
}
