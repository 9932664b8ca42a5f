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
    app::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
