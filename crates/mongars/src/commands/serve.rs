//! `mongars serve`.

use crate::app;
use anyhow::Context;
use mongars_config::Settings;
use tokio::net::TcpListener;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let addr = format!("{}:{}", settings.server.host, settings.server.port);
    let app = app::build(settings).await?;
    app::recover_interrupted_turns(&app).await;
    let shutdown = shutdown_signal()?;
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (server.host / server.port)"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        address = %local,
        database = app.db.engine(),
        startup_ms = started.elapsed().as_millis() as u64,
        "monGARS listening"
    );
    println!("monGARS listening on http://{local}");
    app::serve(app, listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed before this
/// returns, so a signal that arrives as soon as the server says it is
/// listening already means "stop gracefully".
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}
