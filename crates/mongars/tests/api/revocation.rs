//! Revoking an account's access reaches its open sockets: disabling it or
//! changing its password closes every socket of that user with 1008, and no
//! frame sent after the revocation is acted on. A revocation made outside
//! the server (the CLI on the same database) is caught by the sockets' own
//! checks before each chat and at every ping.

use crate::common::{TEST_JWT_SECRET, TestApp, databases, eventually, status_json, use_db};
use crate::conversation::stored_turns;
use mongars_core::domain::{Password, Role, Username};
use serde_json::json;
use std::time::Duration;

async fn admin_and_ana(app: &TestApp) -> (String, String) {
    app.add_user("root", "secret-password", Role::Admin).await;
    app.add_user("ana", "secret-password", Role::User).await;
    (
        app.login("root", "secret-password").await,
        app.login("ana", "secret-password").await,
    )
}

fn chat_send(id: &str) -> serde_json::Value {
    json!({"id": id, "type": "chat.send", "payload": {"message": "still here?"}})
}

#[tokio::test]
async fn disabling_an_account_closes_its_sockets_and_refuses_what_follows() {
    for db in databases().await {
        let app = TestApp::spawn_with(|s| use_db(s, &db)).await;
        disabled_while_connected(&app).await;
    }
}

async fn disabled_while_connected(app: &TestApp) {
    let (root, ana) = admin_and_ana(app).await;
    let mut tab = app.socket(&ana).await;
    let mut phone = app.socket(&ana).await;
    tab.until("history.snapshot").await;
    phone.until("history.snapshot").await;
    let unused_ticket = app.ticket(&ana).await;

    let resp = app
        .client
        .patch(app.url("/api/v1/user/ana"))
        .bearer_auth(&root)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // A frame sent after the revocation is not acted on.
    tab.send(chat_send("after")).await;
    for socket in [&mut tab, &mut phone] {
        assert_eq!(socket.close_code(Duration::from_secs(10)).await, Some(1008));
    }
    assert!(stored_turns(app, "ana").await.is_empty(), "no turn stored");
    assert_eq!(app.open(&unused_ticket, None, None).await.err(), Some(401));
    let (status, _) = status_json(
        app.post_json("/api/v1/auth/ws/ticket", json!({}), Some(&ana))
            .await,
    )
    .await;
    assert_eq!(status, 401);

    eventually(Duration::from_secs(10), "both closes counted", || async {
        let metrics = app.get("/metrics", Some(&root)).await.text().await.unwrap();
        metrics.contains("mongars_ws_closed_total{reason=\"revoked\"} 2")
    })
    .await;
}

#[tokio::test]
async fn changing_the_password_closes_the_users_sockets() {
    let app = TestApp::spawn().await;
    let (_, ana) = admin_and_ana(&app).await;
    let mut tab = app.socket(&ana).await;
    tab.until("history.snapshot").await;
    let old_ticket = app.ticket(&ana).await;
    let (status, body) = status_json(
        app.post_json(
            "/api/v1/user/change-password",
            json!({"old_password": "secret-password", "new_password": "a-new-password"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(tab.close_code(Duration::from_secs(10)).await, Some(1008));
    assert_eq!(app.open(&old_ticket, None, None).await.err(), Some(401));
    // With the new password everything works again.
    let fresh = app.login("ana", "a-new-password").await;
    let mut again = app.socket(&fresh).await;
    again.until("history.snapshot").await;
    again.send(chat_send("c1")).await;
    let ack = again.until("ack").await;
    assert_eq!(ack["payload"]["status"], "ok", "{ack}");
}

/// The auth service as another process (the CLI) builds it, on the same
/// database: what it changes, the server's bus never hears of.
async fn behind_the_servers_back(app: &TestApp) -> mongars_core::auth::AuthService {
    let db = mongars::wiring::database::open_database(&app.settings)
        .await
        .unwrap();
    mongars::wiring::auth::auth_service(
        &app.settings,
        &db,
        TEST_JWT_SECRET.as_bytes(),
        mongars::wiring::system_clock(),
    )
    .await
    .unwrap()
}

async fn disable_behind_the_servers_back(app: &TestApp, name: &str) {
    let auth = behind_the_servers_back(app).await;
    auth.set_disabled(&Username::parse(name).unwrap(), true)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_revocation_the_bus_never_carried_is_caught_before_the_next_chat() {
    let app = TestApp::spawn_with(|s| s.realtime.ping_interval_secs = 3600).await;
    let (_, ana) = admin_and_ana(&app).await;
    let mut tab = app.socket(&ana).await;
    tab.until("history.snapshot").await;
    disable_behind_the_servers_back(&app, "ana").await;
    tab.send(chat_send("late")).await;
    let ack = tab.until("ack").await;
    assert_eq!(ack["id"], "late");
    assert_eq!(ack["payload"]["status"], "error");
    assert_eq!(ack["payload"]["detail"], "auth.token_invalid");
    assert_eq!(tab.close_code(Duration::from_secs(10)).await, Some(1008));
    assert!(stored_turns(&app, "ana").await.is_empty());
}

#[tokio::test]
async fn an_idle_socket_of_a_revoked_account_closes_at_its_next_ping() {
    let app = TestApp::spawn_with(|s| {
        s.realtime.ping_interval_secs = 1;
        s.realtime.pong_timeout_secs = 60;
    })
    .await;
    let (_, ana) = admin_and_ana(&app).await;
    let mut tab = app.socket(&ana).await;
    tab.until("history.snapshot").await;
    // A password set by an operator is a revocation too.
    let auth = behind_the_servers_back(&app).await;
    auth.set_password(
        &Username::parse("ana").unwrap(),
        &Password::new_secret("operator-set-pw", "password").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(tab.close_code(Duration::from_secs(20)).await, Some(1008));
}
