//! Assembly of the application from settings. `mongars serve` and the tests
//! call the same [`build`], then [`serve`] on a listener of their choice.

use crate::jwt_key;
use anyhow::Context;
use axum::Router;
use mongars_config::{DatabaseTarget, Settings};
use mongars_core::CoreError;
use mongars_core::auth::{
    AuthOptions, AuthParts, AuthService, HashParams, LoginThrottle, PasswordHasher, ThrottlePolicy,
    TokenCodec,
};
use mongars_core::conversation::Mind;
use mongars_core::domain::{Password, Username};
use mongars_core::ports::{Embedder, HealthCheck, LlmBackend, SystemClock};
use mongars_http::listener::ListenOptions;
use mongars_http::{AppState, HttpOptions};
use mongars_metrics::Metrics;
use mongars_store::{
    Database, DatabaseCheck, DbConfig, DbTarget, MigrationsCheck, SqlApiKeyRepository,
    SqlThrottleStore, SqlUserRepository,
};
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
}

/// Parts chosen by the caller instead of built from settings (tests).
#[derive(Default, Clone)]
pub struct Overrides {
    /// The engine behind the `embedded` backend name.
    pub llm: Option<Arc<dyn LlmBackend>>,
    /// The embedder, instead of the one in `[embeddings]`.
    pub embedder: Option<Arc<dyn Embedder>>,
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
pub async fn build_with(settings: Settings, overrides: Overrides) -> anyhow::Result<App> {
    let llm = overrides.llm;
    let db = open_database(&settings).await?;
    if settings.database.migrate_on_start {
        let applied = db.migrate().await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "migrations applied");
        }
    }
    let (key, source) = jwt_key::resolve(&settings)?;
    tracing::info!(source = ?source, "JWT signing key loaded");
    let auth = Arc::new(auth_service(&settings, &db, &key).await?);
    if db.migration_status().await?.is_current() {
        bootstrap_from_settings(&settings, &auth).await?;
    } else {
        tracing::warn!(
            "the database schema is not current and database.migrate_on_start is off: \
             run `mongars migrate`; /ready answers 503 until then"
        );
    }

    let metrics = Metrics::new();
    let router = crate::llm::router_from_settings(&settings, llm, &metrics).await?;
    let llm: Arc<dyn LlmBackend> = router.clone();
    let embedder = match overrides.embedder {
        Some(e) => Some(e),
        None => match crate::mind::embedder_from_settings(&settings).await {
            Ok(e) => Some(e),
            Err(e) if settings.memory.enabled => return Err(e),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "no embedding model: /v1/embeddings and suggestions are unavailable");
                None
            }
        },
    };
    let (mind, profiles) = crate::mind::mind_from_settings(&settings, &db, embedder.clone())?;
    let shared = crate::realtime::shared_from_settings(&settings, auth.clone())?;
    let mut conversation =
        crate::llm::conversation_service(&settings, &db, llm.clone(), shared.limiter)
            .with_mind(mind.clone());
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

/// Serve until `shutdown` resolves, then finish requests in flight for at
/// most `server.shutdown_grace_secs`.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_secs(app.settings.server.shutdown_grace_secs);
    let recovery = tokio::spawn(crate::recovery::recovery_loop(
        app.db.clone(),
        app.settings.clone(),
        Duration::from_secs(app.settings.memory.purge_interval_secs),
    ));
    let purge = tokio::spawn(purge_throttle_windows(app.auth.clone()));
    let forget = tokio::spawn(crate::mind::purge_loop(
        app.mind.clone(),
        Duration::from_secs(app.settings.memory.purge_interval_secs),
    ));
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
    recovery.abort();
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

/// Open the configured database without migrating. The data folder is
/// created private to this user (0700) when missing: it holds the database
/// and the signing key.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    create_private_dir(&settings.data_dir)?;
    let target = match settings.database_target() {
        DatabaseTarget::Sqlite(path) => DbTarget::Sqlite(path),
        DatabaseTarget::Postgres(url) => DbTarget::Postgres(url.expose().to_string()),
    };
    let cfg = DbConfig {
        target,
        max_connections: settings.database.max_connections,
        connect_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
        ca_file: Some(settings.tls.ca_file.clone()).filter(|p| !p.as_os_str().is_empty()),
    };
    Ok(Database::connect(&cfg).await?)
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create data folder {} (data_dir)", dir.display()))
}

/// The auth service on `db`, signing with `key`.
pub async fn auth_service(
    settings: &Settings,
    db: &Database,
    key: &[u8],
) -> anyhow::Result<AuthService> {
    let a = &settings.auth;
    let hasher = PasswordHasher::new(
        HashParams {
            memory_kib: a.argon2_memory_kib,
            iterations: a.argon2_iterations,
            parallelism: a.argon2_parallelism,
        },
        a.max_concurrent_hashes as usize,
    )
    .await?;
    let throttle = LoginThrottle::new(
        Arc::new(SqlThrottleStore::new(db.clone())),
        ThrottlePolicy {
            window_secs: a.throttle.window_secs,
            max_failures_per_user: a.throttle.max_failures_per_user,
            max_failures_per_address: a.throttle.max_failures_per_address,
        },
    );
    Ok(AuthService::new(
        AuthParts {
            users: Arc::new(SqlUserRepository::new(db.clone())),
            keys: Arc::new(SqlApiKeyRepository::new(db.clone())),
            throttle,
            hasher,
            tokens: TokenCodec::new(key, u64::from(a.token_ttl_minutes) * 60),
            clock: Arc::new(SystemClock),
        },
        AuthOptions {
            open_registration: a.open_registration,
            bootstrap_enabled: settings.bootstrap.endpoint_enabled,
        },
    ))
}

async fn bootstrap_from_settings(settings: &Settings, auth: &AuthService) -> anyhow::Result<()> {
    let b = &settings.bootstrap;
    if b.admin_username.is_empty() {
        if auth.count_admins().await? == 0 {
            tracing::warn!(
                "no admin account yet: run `mongars user add NAME --admin`, set \
                 bootstrap.admin_username/admin_password, or POST /api/v1/auth/bootstrap-admin"
            );
        }
        return Ok(());
    }
    let username = Username::parse(&b.admin_username).context("bootstrap.admin_username")?;
    let password = Password::new_secret(b.admin_password.expose(), "bootstrap.admin_password")
        .context("bootstrap.admin_password")?;
    match auth.create_first_admin(username, &password).await {
        Ok(user) => tracing::info!(username = %user.username, "first admin created from settings"),
        Err(CoreError::AdminExists) => {
            tracing::debug!("an admin exists; bootstrap settings ignored")
        }
        Err(CoreError::UserExists) => tracing::warn!(
            username = %b.admin_username,
            "bootstrap.admin_username names an existing non-admin account; no admin created"
        ),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Forget closed failed-login windows now and then.
async fn purge_throttle_windows(auth: Arc<AuthService>) {
    let every = Duration::from_secs(auth.throttle().policy().window_secs.clamp(10, 3600));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = chrono::Utc::now().timestamp_millis();
        match auth.throttle().purge(now).await {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "closed login windows purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging login windows failed"),
        }
    }
}
