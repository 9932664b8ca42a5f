//! `GET /metrics`: Prometheus text. On the main port it answers admins and
//! holders of the scrape token (`metrics.scrape_token`); the optional
//! separate listener answers on loopback, or with the token when one is set.

use crate::error::{ApiError, ApiResult};
use crate::extract::AdminUser;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mongars_metrics::Metrics;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn text(metrics: &Metrics) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render()).into_response()
}

/// Whether the request carries `token` as its bearer token (constant time).
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    let Some(sent) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    let (a, b) = (sent.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Prometheus text, for admins and the scrape token (404 when metrics are off).
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    admin: Result<AdminUser, ApiError>,
) -> ApiResult<Response> {
    if !state.http.metrics_enabled {
        return Err(ApiError::not_found());
    }
    let by_token = state
        .http
        .metrics_token
        .as_deref()
        .is_some_and(|t| has_token(&headers, t));
    if !by_token {
        admin?;
    }
    Ok(text(&state.metrics))
}

/// The router of the separate metrics listener: only `GET /metrics`.
pub fn listener_router(metrics: Metrics, token: Option<String>) -> Router {
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let metrics = metrics.clone();
            let token = token.clone();
            async move {
                match token {
                    Some(t) if !has_token(&headers, &t) => ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "auth.token_invalid",
                        "A valid scrape token is required",
                    )
                    .into_response(),
                    _ => text(&metrics),
                }
            }
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        let mut h = HeaderMap::new();
        assert!(!has_token(&h, "abc"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert!(has_token(&h, "abc"));
        assert!(!has_token(&h, "abd"));
        assert!(!has_token(&h, "abcd"));
    }
}
