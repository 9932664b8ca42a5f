//! The peer listener: a port of its own, TLS 1.3 with a client certificate
//! required (see [`crate::trust`]), serving exactly the peer API:
//! `GET|POST /peer/v1/load` and `POST /peer/v1/generate`. Anything else,
//! user and admin routes included, is 403 `peer.forbidden`. A generation
//! for a peer runs on this node's own backends (never handed on again) and
//! nothing of it is stored or logged here but its size and outcome.

use crate::client::{GENERATE_PATH, LOAD_PATH};
use crate::node::PeerNode;
use crate::wire::{MAX_BODY, WireEvent, WireRequest, parse_load};
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use hyper_util::rt::{TokioIo, TokioTimer};
use mongars_core::ports::{LlmBackend, LlmError};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The calling peer: its certificate's fingerprint, and whether the
/// installation's CA (rather than registration) let it in.
#[derive(Clone)]
pub struct Caller {
    pub fingerprint: String,
    pub via_ca: bool,
}

#[derive(Clone)]
struct PeerApi {
    node: Arc<PeerNode>,
    llm: Arc<dyn LlmBackend>,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"code": code, "message": message})),
    )
        .into_response()
}

/// A connection outlives a registration: every request is checked again,
/// so a peer unregistered while connected is refused at its next call.
async fn admitted(
    State(api): State<PeerApi>,
    Extension(caller): Extension<Caller>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if caller.via_ca || api.node.registered().contains(&caller.fingerprint) {
        next.run(request).await
    } else {
        error(
            StatusCode::FORBIDDEN,
            "peer.unregistered",
            "this node no longer accepts the caller",
        )
    }
}

async fn load(State(api): State<PeerApi>) -> Response {
    axum::Json(api.node.own_load().await).into_response()
}

async fn receive_load(
    State(api): State<PeerApi>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let received = |outcome| {
        api.node
            .metrics
            .peers
            .reports
            .with_label_values(&["received", outcome])
            .inc()
    };
    let report = match parse_load(&body) {
        Ok(r) => r,
        Err(e) => {
            received("invalid");
            return error(StatusCode::BAD_REQUEST, "peer.invalid_load", &e);
        }
    };
    // The report is the caller's own: its id must be the certificate's.
    if report.scheduler_id != caller.fingerprint {
        received("invalid");
        return error(
            StatusCode::BAD_REQUEST,
            "peer.invalid_load",
            "scheduler_id is not the caller's certificate fingerprint",
        );
    }
    if let Some(member) = api.node.member_by_fingerprint(&caller.fingerprint) {
        member.status.record(report);
    }
    received("ok");
    axum::Json(api.node.own_load().await).into_response()
}

async fn generate(State(api): State<PeerApi>, body: Bytes) -> Response {
    let request = match WireRequest::parse(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "peer.invalid_request", &e),
    };
    let served = api.node.metrics.peers.served.clone();
    let stream = match mongars_llm::router::serving_peer(api.llm.generate(request)).await {
        Ok(s) => s,
        Err(e) => {
            served.with_label_values(&["failed"]).inc();
            let status = match e {
                LlmError::Overloaded { .. } | LlmError::Busy { .. } => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                LlmError::PromptTooLong { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_GATEWAY,
            };
            return error(status, e.kind(), &e.to_string());
        }
    };
    let lines = futures_util::stream::unfold(
        (stream, served, false),
        |(mut stream, served, ended)| async move {
            if ended {
                return None;
            }
            let event = stream.recv().await?;
            let last = !matches!(event, Ok(mongars_core::domain::GenerationEvent::Delta(_)));
            if last {
                let outcome = if event.is_ok() { "ok" } else { "failed" };
                served.with_label_values(&[outcome]).inc();
            }
            let mut line = serde_json::to_vec(&WireEvent::from_event(&event)).unwrap_or_default();
            line.push(b'\n');
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(line)),
                (stream, served, last),
            ))
        },
    );
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response()
}

async fn forbidden() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "peer.forbidden",
        "a peer may call the peer API only",
    )
}

fn routes(node: Arc<PeerNode>, llm: Arc<dyn LlmBackend>) -> axum::Router {
    let api = PeerApi { node, llm };
    axum::Router::new()
        .route(LOAD_PATH, get(load).post(receive_load))
        .route(GENERATE_PATH, post(generate))
        // Every request, not only the handshake: a connection outlives a
        // registration.
        .route_layer(axum::middleware::from_fn_with_state(api.clone(), admitted))
        .fallback(forbidden)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Serve the peer API on `listener` until `stop` resolves; connections
/// still open then are cut. `llm` is the node's generation router.
pub async fn serve(
    listener: TcpListener,
    node: Arc<PeerNode>,
    llm: Arc<dyn LlmBackend>,
    stop: impl Future<Output = ()>,
) -> Result<(), String> {
    let tls = crate::trust::server_config(&node.identity, node.registered(), node.ca.clone())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let app = routes(node.clone(), llm);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "peer listener: accept failed");
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        // Tokens are small writes: none may wait for the previous one's ACK.
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let handshakes = node.metrics.peers.handshakes.clone();
        let registered = node.registered();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    handshakes.with_label_values(&["refused"]).inc();
                    tracing::warn!(peer = %addr, error = %e, "peer handshake refused");
                    return;
                }
                Err(_) => {
                    handshakes.with_label_values(&["refused"]).inc();
                    return;
                }
            };
            let caller = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::identity::fingerprint(c));
            let Some(caller) = caller else {
                handshakes.with_label_values(&["refused"]).inc();
                return;
            };
            handshakes.with_label_values(&["ok"]).inc();
            let caller = Caller {
                via_ca: !registered.contains(&caller),
                fingerprint: caller,
            };
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(caller.clone());
                    app.clone().oneshot(req.map(axum::body::Body::new))
                },
            );
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "peer connection ended with an error");
            }
        });
    }
    connections.shutdown().await;
    Ok(())
}
