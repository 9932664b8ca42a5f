//! Logs captured across the whole auth flow, at TRACE level, contain no
//! password and no token; probes that orchestrators send many times a
//! second are logged at debug, not info.

#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod capture;

#[path = "api/common/mod.rs"]
mod common;

use capture::Capture;
use common::TestApp;
use mongars_core::domain::Role;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn auth_flow_logs_no_secrets() {
    let capture = Capture::install();

    let app = TestApp::spawn().await;
    let admin_pw = "Adm1n-Pa55word-xyzzy";
    let user_pw = "Us3r-Pa55word-plugh";
    let new_pw = "N3w-Pa55word-frobozz";
    let wrong_pw = "Wr0ng-Pa55word-grue";
    app.add_user("root", admin_pw, Role::Admin).await;

    let admin = app.login("root", admin_pw).await;
    let reg = json!({"username": "bob", "password": user_pw});
    app.post_json("/api/v1/user/register", reg, Some(&admin))
        .await;
    let form = app.post_token("bob", user_pw).await;
    let form_token = form.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    app.post_token("bob", wrong_pw).await;
    app.post_token("nobody", wrong_pw).await;
    let change = json!({"old_password": user_pw, "new_password": new_pw});
    app.post_json("/api/v1/user/change-password", change, Some(&form_token))
        .await;
    app.get("/api/v1/user/list", Some(&form_token)).await;
    app.get("/api/v1/user/list", Some(&admin)).await;
    let boot = json!({"username": "x", "password": "Bo0tstrap-Pa55"});
    app.post_json("/api/v1/auth/bootstrap-admin", boot, None)
        .await;
    app.shutdown().await;

    let logs = capture.text();
    assert!(logs.contains("login succeeded"), "logging was captured");
    assert!(logs.contains("request done"));
    let token_parts: Vec<&str> = admin.split('.').chain(form_token.split('.')).collect();
    for secret in [
        admin_pw,
        user_pw,
        new_pw,
        wrong_pw,
        "Bo0tstrap-Pa55",
        common::TEST_JWT_SECRET,
    ]
    .into_iter()
    .chain(token_parts.iter().skip(1).copied())
    {
        assert!(!logs.contains(secret), "secret found in logs: {secret}");
    }
    assert!(
        !logs.to_ascii_lowercase().contains("authorization"),
        "headers logged"
    );
    assert!(!logs.contains("$argon2id$"), "password hash logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn probes_are_logged_at_debug_and_other_requests_at_info() {
    let capture = Capture::install();
    let app = TestApp::spawn().await;
    for _ in 0..20 {
        assert_eq!(app.get("/healthz", None).await.status(), 200);
        assert_eq!(app.get("/ready", None).await.status(), 200);
    }
    assert_eq!(app.get("/api/v1/user/list", None).await.status(), 401);
    app.shutdown().await;

    let logs = capture.text();
    let of = |path: &str| -> Vec<serde_json::Value> {
        logs.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| l["span"]["path"] == path)
            .filter(|l| l["fields"]["latency_ms"].is_number())
            .collect()
    };
    for probe in ["/healthz", "/ready"] {
        let lines = of(probe);
        assert!(lines.len() >= 20, "{probe}: {} response lines", lines.len());
        assert!(
            lines.iter().all(|l| l["level"] == "DEBUG"),
            "{probe} logged above debug: {lines:?}"
        );
    }
    let other = of("/api/v1/user/list");
    assert!(
        !other.is_empty() && other.iter().all(|l| l["level"] == "INFO"),
        "{other:?}"
    );
}
