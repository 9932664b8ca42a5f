//! Liveness and readiness.

use crate::middleware::Probe;
use crate::openapi::Status;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

/// `GET /healthz`: the process answers. Checks nothing else, by design.
/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> (Extension<Probe>, Json<Status>) {
    let body = Status {
        status: "ok".into(),
    };
    (Extension(Probe), Json(body))
}

/// Whether the server can serve: each dependency checked.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// Each check: `ok`, or `error: <why>`.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    checks: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

/// `GET /ready`: 200 only when every dependency check passes; 503 naming the
/// failing checks otherwise. Checks run concurrently, each with a deadline.
/// 200 when the database answers, migrations are current and a generation
/// backend is usable (and Redis answers, when configured).
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "Ready", body = Readiness),
    (status = 503, description = "Not ready: the failing checks", body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let runs = state.readiness.iter().map(|c| async move {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(3), c.check())
            .await
            .unwrap_or_else(|_| Err("timed out".to_string()));
        (c.name(), outcome)
    });
    let results = futures_util::future::join_all(runs).await;
    let mut checks = Map::new();
    let mut failing = Vec::new();
    for (name, outcome) in results {
        match outcome {
            Ok(()) => {
                checks.insert(name.into(), json!("ok"));
            }
            Err(why) => {
                checks.insert(name.into(), json!(format!("error: {why}")));
                failing.push(name);
            }
        }
    }
    if failing.is_empty() {
        let body = Readiness {
            status: "ready",
            checks,
            detail: None,
            code: None,
        };
        (StatusCode::OK, Extension(Probe), Json(body)).into_response()
    } else {
        let body = Readiness {
            status: "not_ready",
            checks,
            detail: Some(format!("Failing checks: {}", failing.join(", "))),
            code: Some("service.not_ready"),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
