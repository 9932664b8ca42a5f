//! The HTTP listener: accepts connections and serves the router on each,
//! with the limits that keep clients without credentials from exhausting
//! the server.
//!
//! - Header-read timeout: a client must finish a request's headers within
//!   `header_read_timeout` of connecting or of its previous reply (hyper
//!   starts the timer whenever a kept-alive connection waits for its next
//!   request), or the connection is closed.
//! - Idle timeout: a connection on which no byte has moved either way for
//!   `idle_timeout` is closed, whatever it is waiting for.
//! - Connection cap: at most `max_connections` are served at once, upgraded
//!   WebSockets included (the permit travels with the socket). Past the cap
//!   a connection is answered 503 `server.busy` with `Retry-After` at once
//!   and closed; the refusals themselves hold descriptors only briefly, and
//!   accept errors such as running out of descriptors never spin the loop.
//! - Shutdown: no new connections; those open are asked to finish after
//!   their current request, and cut after `grace`.

mod idle;
mod refuse;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use idle::{Activity, Tracked};
use mongars_metrics::HttpMetrics;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// Refusals (503 past the cap) in progress at once; beyond this, connections
/// past the cap are answered without waiting for their request.
const MAX_REFUSING: usize = 64;

#[derive(Debug, Clone, Copy)]
pub struct ListenOptions {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// How long open connections may take to finish at shutdown.
    pub grace: Duration,
}

/// Serve `router` on `listener` until `shutdown` resolves, then let open
/// connections finish for at most `options.grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ListenOptions,
    metrics: HttpMetrics,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    if let Err(e) = tcp.set_nodelay(true) {
                        tracing::debug!(error = %e, "could not set TCP_NODELAY");
                    }
                    match permits.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let conn = Connection {
                                router: router.clone(),
                                options,
                                metrics: metrics.clone(),
                                stop: stop_rx.clone(),
                            };
                            tasks.spawn(conn.serve(tcp, peer, permit));
                        }
                        Err(_) => over_cap(tcp, &refusing, &metrics, &mut tasks),
                    }
                }
                Err(e) => accept_failed(e).await,
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let open = tasks.len();
    if open > 0 {
        tracing::info!(
            connections = open,
            grace_secs = options.grace.as_secs(),
            "finishing connections in flight"
        );
    }
    let drained = tokio::time::timeout(options.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "grace period over; closing remaining connections"
        );
        tasks.abort_all();
    }
}

fn over_cap(
    tcp: TcpStream,
    refusing: &Arc<Semaphore>,
    metrics: &HttpMetrics,
    tasks: &mut JoinSet<()>,
) {
    metrics
        .connections_closed
        .with_label_values(&["over_cap"])
        .inc();
    match refusing.clone().try_acquire_owned() {
        Ok(permit) => {
            tasks.spawn(async move {
                refuse::refuse(tcp).await;
                drop(permit);
            });
        }
        Err(_) => refuse::refuse_now(tcp),
    }
}

/// Errors of `accept` are about one connection (it was reset before we took
/// it) or about this process (out of descriptors, memory): the latter are
/// logged at most once a second and waited out briefly.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) {
        return;
    }
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    let now = std::time::Instant::now();
    if let Ok(mut last) = LAST.lock()
        && last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1))
    {
        *last = Some(now);
        tracing::warn!(error = %e, "cannot accept connections; retrying shortly");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// One accepted connection and what serving it needs.
struct Connection {
    router: Router,
    options: ListenOptions,
    metrics: HttpMetrics,
    stop: watch::Receiver<bool>,
}

/// Held for as long as the connection's socket lives (past an upgrade too):
/// its place under the cap and its count in the gauge.
struct Held {
    _permit: OwnedSemaphorePermit,
    metrics: HttpMetrics,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.metrics.connections.dec();
    }
}

impl Connection {
    async fn serve(mut self, tcp: TcpStream, peer: SocketAddr, permit: OwnedSemaphorePermit) {
        self.metrics.connections.inc();
        let held = Held {
            _permit: permit,
            metrics: self.metrics.clone(),
        };
        let activity = Activity::new();
        let io = TokioIo::new(Tracked::new(tcp, activity.clone(), held));
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.options.header_read_timeout)
            .serve_connection(io, service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut stopping = *self.stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        let ended_by = loop {
            tokio::select! {
                done = conn.as_mut() => break match done {
                    Err(e) if e.is_timeout() => Some("header_timeout"),
                    Err(e) => {
                        tracing::debug!(error = %e, "connection ended with an error");
                        None
                    }
                    Ok(()) => None,
                },
                _ = activity.idle_for(self.options.idle_timeout) => break Some("idle"),
                changed = self.stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        };
        if let Some(reason) = ended_by {
            self.metrics
                .connections_closed
                .with_label_values(&[reason])
                .inc();
        }
    }
}
