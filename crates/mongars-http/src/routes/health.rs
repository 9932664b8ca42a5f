//! Liveness and readiness.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// `GET /healthz`: the process answers. Checks nothing else, by design.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    checks: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

/// `GET /ready`: 200 only when every dependency check passes; 503 naming the
/// failing checks otherwise. Checks run concurrently, each with a deadline.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
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
        (StatusCode::OK, Json(body))
    } else {
        let body = Readiness {
            status: "not_ready",
            checks,
            detail: Some(format!("Failing checks: {}", failing.join(", "))),
            code: Some("service.not_ready"),
        };
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}
