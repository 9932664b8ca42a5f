//! The admin API of peers: input parsed at the edge, telemetry, and the
//! answer of a node that does not join peers.

use super::Node;
use crate::common::{TestApp, status_json};
use mongars_core::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_a_fingerprint_and_an_https_url() {
    let a = Node::start("a", |_| {}).await;
    let fp = "ab".repeat(32);
    for (body, field) in [
        (json!({"url": "https://b:8443"}), None),
        (
            json!({"url": "https://b:8443", "fingerprint": ""}),
            Some("fingerprint"),
        ),
        (
            json!({"url": "https://b:8443", "fingerprint": "abc"}),
            Some("fingerprint"),
        ),
        (
            json!({"url": "http://b:8443", "fingerprint": fp}),
            Some("url"),
        ),
        (
            json!({"url": "https://b:8443/x", "fingerprint": fp}),
            Some("url"),
        ),
        (
            json!({"url": "https://b", "fingerprint": fp, "secret": 1}),
            None,
        ),
        (
            json!({"url": "https://b", "fingerprint": a.node_id()}),
            Some("fingerprint"),
        ),
    ] {
        let (status, err) = status_json(
            a.app
                .post_json("/api/v1/peer/register", body.clone(), Some(&a.admin))
                .await,
        )
        .await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {status} {err}"
        );
        if let Some(field) = field {
            assert_eq!(err["code"], "request.validation", "{body}: {err}");
            assert!(err.to_string().contains(field), "{body}: {err}");
        }
    }
    assert!(a.peers().await["peers"].as_array().unwrap().is_empty());
    // Users are not admins.
    let (status, _) = status_json(
        a.app
            .post_json(
                "/api/v1/peer/register",
                json!({"url": "https://b", "fingerprint": fp}),
                Some(&a.user),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A valid one is stored, with its parts normalised, and listed down
    // until it reports.
    let (status, peer) = status_json(
        a.app
            .post_json(
                "/api/v1/peer/register",
                json!({"url": "https://Node-B:8443/", "fingerprint": fp.to_uppercase()}),
                Some(&a.admin),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{peer}");
    assert_eq!(peer["url"], "https://node-b:8443");
    assert_eq!(peer["fingerprint"], fp);
    assert_eq!(peer["state"], "down");
    assert!(peer["last_load"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_is_kept_per_source_and_checked() {
    let a = Node::start("a", |_| {}).await;
    let report = json!({
        "worker_uptime_seconds": 120.5, "tasks_processed": 10, "tasks_failed": 1,
        "task_failure_rate": 0.1, "observed_at": "2026-12-01T10:00:00Z", "source": "worker-7"
    });
    let (status, _) = status_json(
        a.app
            .post_json("/api/v1/peer/telemetry", report.clone(), Some(&a.admin))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut bad = report.clone();
    bad["task_failure_rate"] = json!(3.0);
    let (status, err) = status_json(
        a.app
            .post_json("/api/v1/peer/telemetry", bad, Some(&a.admin))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["code"], "request.validation");
    let (status, all) =
        status_json(a.app.get("/api/v1/peer/telemetry", Some(&a.admin)).await).await;
    assert_eq!(status, StatusCode::OK);
    let reports = all["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 2, "{all}");
    assert_eq!(reports[0]["source"], a.node_id());
    assert_eq!(reports[1]["source"], "worker-7");
    assert_eq!(reports[1]["tasks_failed"], 1);
    assert_eq!(all["load"]["scheduler_id"], a.node_id());
    // The node's own count follows its generations.
    let (status, _) = a.chat("count me").await;
    assert_eq!(status, StatusCode::OK);
    let (_, all) = status_json(a.app.get("/api/v1/peer/telemetry", Some(&a.admin)).await).await;
    assert!(
        all["reports"][0]["tasks_processed"].as_u64().unwrap() >= 1,
        "{all}"
    );
}

#[tokio::test]
async fn without_peers_the_api_says_so() {
    let app = TestApp::spawn().await;
    app.add_user("root", "secret-password", Role::Admin).await;
    let admin = app.login("root", "secret-password").await;
    let (status, err) = status_json(app.get("/api/v1/peer/list", Some(&admin)).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["code"], "feature.disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_peers_of_settings_are_registered_at_start_and_come_up() {
    let b = Node::start("b", |_| {}).await;
    let (url, fingerprint) = (b.peer_url(), b.node_id());
    let a = Node::start("a", |s| {
        s.peers.static_peers = vec![mongars_config::StaticPeer {
            url: url.clone(),
            fingerprint: fingerprint.clone(),
        }];
    })
    .await;
    let list = a.peers().await;
    assert_eq!(list["peers"][0]["url"], url, "{list}");
    assert_eq!(list["peers"][0]["fingerprint"], fingerprint);
    b.register(&a).await;
    a.wait_state(&url, "up").await;
}
