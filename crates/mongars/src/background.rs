//! Work a running server repeats now and then: forgetting closed login
//! windows, expired working memory and memories, and handing the heap's
//! free pages back to the system.

use mongars_core::auth::AuthService;
use mongars_core::conversation::Mind;
use std::sync::Arc;
use std::time::Duration;

/// Forget closed failed-login windows now and then.
pub async fn purge_throttle_windows(auth: Arc<AuthService>) {
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

/// How often the heap's free pages go back to the system.
pub const RELEASE_FREE_HEAP: Duration = Duration::from_secs(60);

/// Hand the C heap's free pages back to the system every `every`, so that
/// resident memory follows what is in use rather than the most that
/// allocator arenas ever held (see `mongars_process_heap_bytes`).
pub async fn release_free_heap(every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        match tokio::task::spawn_blocking(mongars_metrics::release_free_heap).await {
            Ok(released) => tracing::debug!(released, "free heap pages handed back"),
            Err(e) => tracing::warn!(error = %e, "handing free heap pages back failed"),
        }
    }
}

/// Purge expired working-memory turns and memories now and then.
pub async fn purge_loop(mind: Mind, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        match mind.working.purge().await {
            Ok(n) if n > 0 => tracing::debug!(turns = n, "working memory purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging working memory failed"),
        }
        if let Some(memory) = &mind.memory {
            match memory.purge_expired().await {
                Ok(n) if n > 0 => tracing::debug!(memories = n, "expired memories purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging memories failed"),
            }
        }
    }
}

/// Serve the adapter the registry says is active: at start (so that a
/// restarted node comes back on it) and every `every`, so that each replica
/// follows an activation or rollback made on another.
pub async fn follow_adapters(
    registry: Arc<mongars_core::training::registry::AdapterRegistry>,
    metrics: mongars_metrics::Metrics,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        match registry.reconcile().await {
            Ok(true) => {
                metrics.adapter_switch("reconcile", started.elapsed());
                tracing::info!(adapter = ?registry.serving(), "now serving the registry's active adapter");
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "following the active adapter failed"),
        }
    }
}

/// The peer listener and the load exchange of a node, running until this
/// is dropped (then both stop, and peers' connections are cut).
pub struct PeerTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for PeerTasks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Start serving peers on `listener` with `llm`, and exchanging load.
pub fn start_peers(
    node: std::sync::Arc<mongars_peer::PeerNode>,
    listener: tokio::net::TcpListener,
    llm: std::sync::Arc<dyn mongars_core::ports::LlmBackend>,
) -> PeerTasks {
    let server_node = node.clone();
    let server = tokio::spawn(async move {
        let never = std::future::pending::<()>();
        if let Err(e) = mongars_peer::server::serve(listener, server_node, llm, never).await {
            tracing::error!(error = %e, "the peer listener stopped");
        }
    });
    let exchange = tokio::spawn(mongars_peer::exchange::run(node));
    PeerTasks {
        tasks: vec![server, exchange],
    }
}
