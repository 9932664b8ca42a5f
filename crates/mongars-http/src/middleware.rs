//! Cross-cutting request handling: request ids, the request span, timeouts,
//! panics and the JSON fallbacks.
//!
//! Logging policy: the request span records method, matched route, path
//! (never the query string, which may carry tickets) and request id; headers
//! and bodies are never logged, so passwords, tokens and `Authorization` never
//! reach the logs.

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mongars_metrics::Metrics;
use std::any::Any;
use std::time::{Duration, Instant};
use tracing::Span;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The span every request's logs are recorded in.
pub fn request_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!(
        "request",
        method = %req.method(),
        route = tracing::field::Empty,
        path = %req.uri().path(),
        request_id = %request_id,
    )
}

/// Record the matched route template (`/api/v1/user/{id}`, bounded) in the
/// request span, and the request in the HTTP metrics; runs after routing, as
/// a route layer. Streamed bodies count until their headers are sent.
pub async fn record_route(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|r| r.as_str().to_string());
    if let Some(route) = &route {
        Span::current().record("route", route.as_str());
    }
    let method = req.method().clone();
    let resp = next.run(req).await;
    if let Some(route) = route {
        metrics.observe_http(
            &route,
            method.as_str(),
            resp.status().as_u16(),
            started.elapsed(),
        );
    }
    resp
}

/// Marks a successful answer to a probe (liveness, readiness, a metrics
/// scrape): logged at debug, since orchestrators and load balancers ask
/// many times a second and each line would say the same.
#[derive(Clone, Copy, Debug)]
pub struct Probe;

/// Log one line per response, at a level that follows the status.
pub fn log_response<B>(resp: &axum::http::Response<B>, latency: Duration, _span: &Span) {
    let status = resp.status().as_u16();
    let ms = latency.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::error!(status, latency_ms = ms, "request failed");
    } else if resp.extensions().get::<Probe>().is_some() {
        tracing::debug!(status, latency_ms = ms, "probe answered");
    } else {
        tracing::info!(status, latency_ms = ms, "request done");
    }
}

/// Answer 504 with the API's error body when a handler takes too long to
/// produce its response head (streaming bodies are not cut).
pub async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request timed out");
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "request.timeout",
                "Request timed out",
            )
            .into_response()
        }
    }
}

/// Turn a panic in a handler into a 500 with the usual body.
pub fn panic_response(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = %what, "handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal server error",
    )
    .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method_not_allowed",
        "Method not allowed",
    )
}
