//! Health, readiness, request ids and the error shape of the HTTP skeleton.

use crate::common::{TestApp, status_json};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn healthz_and_ready() {
    let app = TestApp::spawn().await;
    let (status, body) = status_json(app.get("/healthz", None).await).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = status_json(app.get("/ready", None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {"database": "ok", "llm": "ok", "migrations": "ok"}})
    );
    app.shutdown().await;
}

#[tokio::test]
async fn ready_is_503_while_the_generation_backend_is_down() {
    use mongars_llm::scripted::{Script, ScriptedBackend};
    let down = ScriptedBackend::new(Script::Reply("x".into())).unhealthy("engine stopped");
    let app = TestApp::spawn_scripted(|_| {}, std::sync::Arc::new(down)).await;
    let (status, body) = status_json(app.get("/ready", None).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["llm"], "error: scripted: engine stopped");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn ready_is_503_until_migrations_are_applied() {
    let app = TestApp::spawn_with(|s| s.database.migrate_on_start = false).await;
    let (status, body) = status_json(app.get("/ready", None).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["code"], "service.not_ready");
    assert_eq!(body["checks"]["database"], "ok");
    let why = body["checks"]["migrations"].as_str().unwrap();
    assert!(
        why.contains("pending") && why.contains("mongars migrate"),
        "{why}"
    );
    // Health is independent of readiness.
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);

    let db = mongars::wiring::database::open_database(&app.settings)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let (status, _) = status_json(app.get("/ready", None).await).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let app = TestApp::spawn().await;
    let mut seen = std::collections::HashSet::new();
    for path in ["/healthz", "/ready", "/nope", "/api/v1/user/list"] {
        let resp = app.get(path, None).await;
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        assert!(seen.insert(id));
    }
    let resp = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "caller-chosen-id")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "caller-chosen-id");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn().await;
    let (status, body) = status_json(app.get("/no/such/route", None).await).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"detail": "Not found", "code": "request.not_found"})
        )
    );
    let (status, body) = status_json(app.get("/token", None).await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], "request.method_not_allowed");
}

#[tokio::test]
async fn malformed_bodies_get_clear_errors() {
    let app = TestApp::spawn().await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let (status, body) = status_json(post("{not json", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("request.malformed"))
    );
    let (status, body) =
        status_json(post("{\"username\": 5}", "application/json").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("request.validation"))
    );
    let (status, body) = status_json(post("username=a", "text/plain").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("request.unsupported_media_type")
        )
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = TestApp::spawn_with(|s| s.server.body_limit_bytes = 2048).await;
    let big = json!({"username": "a", "password": "p".repeat(4000)});
    let (status, body) = status_json(app.post_json("/api/v1/auth/login", big, None).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("request.too_large"))
    );
    let form = app
        .client
        .post(app.url("/token"))
        .form(&[("username", "a".repeat(3000)), ("password", "b".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn graceful_shutdown_finishes_and_releases_the_port() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    app.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
}
