//! Per-user API keys over HTTP: made once and shown once, listed without
//! their secret, accepted wherever a token is (with the owner's current
//! role), and refused at once when revoked, expired, or when the owner is
//! disabled or changes password. On SQLite and PostgreSQL.

use crate::common::{TestApp, databases, status_json, use_db};
use crate::edge::{admin_and_user, api_error, send};
use reqwest::StatusCode as S;
use serde_json::{Value, json};
use std::time::Duration;

const KEYS: &str = "/api/v1/auth/keys";

async fn make_key(app: &TestApp, token: &str, body: Value) -> Value {
    let resp = app.post_json(KEYS, body, Some(token)).await;
    assert_eq!(resp.status(), S::CREATED);
    resp.json().await.unwrap()
}

/// Disable or enable ana, as the admin `root`.
async fn set_disabled(app: &TestApp, root: &str, disabled: bool) -> S {
    send(app, "PATCH", "/api/v1/user/ana", Some(root))
        .json(&json!({"disabled": disabled}))
        .send()
        .await
        .unwrap()
        .status()
}

async fn status_with(app: &TestApp, method: &str, path: &str, key: &str) -> S {
    send(app, method, path, Some(key))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_key_is_shown_once_and_acts_as_its_owner_until_revoked() {
    for db in databases().await {
        let app = TestApp::spawn_with(|s| use_db(s, &db)).await;
        let (root, ana) = admin_and_user(&app).await;
        let made = make_key(&app, &ana, json!({"name": "laptop", "expires_in_days": 30})).await;
        let key = made["key"].as_str().unwrap().to_string();
        assert!(key.starts_with("mg_") && key.len() == 67, "{made}");
        assert!(key.starts_with(made["prefix"].as_str().unwrap()));
        assert_eq!(made["name"], "laptop");
        assert!(made["expires_at"].is_string());

        // Listed without the secret; unused so far.
        let (_, listed) = status_json(app.get(KEYS, Some(&ana)).await).await;
        let listed = &listed["keys"];
        assert_eq!(listed.as_array().unwrap().len(), 1);
        assert!(listed[0].get("key").is_none(), "{listed}");
        assert!(!listed.to_string().contains(&key[11..]));
        assert!(listed[0]["last_used_at"].is_null());

        // Wherever a token works, with the owner's role.
        for path in [
            "/v1/models",
            "/api/v1/conversation/history",
            "/api/v1/profile",
        ] {
            assert_eq!(status_with(&app, "GET", path, &key).await, S::OK, "{path}");
        }
        assert_eq!(
            status_with(&app, "GET", "/api/v1/user/list", &key).await,
            S::FORBIDDEN
        );
        let admin_key = make_key(&app, &root, json!({"name": "ops"})).await;
        let admin_key = admin_key["key"].as_str().unwrap();
        assert_eq!(
            status_with(&app, "GET", "/api/v1/user/list", admin_key).await,
            S::OK
        );
        let (_, listed) = status_json(app.get(KEYS, Some(&ana)).await).await;
        assert!(
            listed["keys"][0]["last_used_at"].is_string(),
            "use recorded"
        );

        // A key cannot make or revoke keys.
        let resp = send(&app, "POST", KEYS, Some(&key))
            .json(&json!({"name": "x"}))
            .send();
        assert_eq!(
            api_error(resp.await.unwrap(), S::FORBIDDEN, "key makes key").await,
            "auth.forbidden"
        );

        // Revoked: refused at once; a second revoke, or someone else's, is 404.
        let id = made["id"].as_str().unwrap();
        let path = format!("{KEYS}/{id}");
        assert_eq!(
            status_with(&app, "DELETE", &path, &root).await,
            S::NOT_FOUND
        );
        assert_eq!(
            status_with(&app, "DELETE", &path, &ana).await,
            S::NO_CONTENT
        );
        let resp = send(&app, "GET", "/v1/models", Some(&key))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), S::UNAUTHORIZED);
        assert_eq!(status_with(&app, "DELETE", &path, &ana).await, S::NOT_FOUND);
        let (_, listed) = status_json(app.get(KEYS, Some(&ana)).await).await;
        assert_eq!(listed["keys"], json!([]));
    }
}

#[tokio::test]
async fn disabling_the_owner_or_a_new_password_ends_every_key() {
    for db in databases().await {
        let app = TestApp::spawn_with(|s| use_db(s, &db)).await;
        let (root, ana) = admin_and_user(&app).await;
        let first = make_key(&app, &ana, json!({"name": "one"})).await["key"].clone();
        let first = first.as_str().unwrap();
        let change = json!({"old_password": "secret-password", "new_password": "another-password"});
        let resp = app
            .post_json("/api/v1/user/change-password", change, Some(&ana))
            .await;
        assert_eq!(resp.status(), S::OK);
        assert_eq!(
            status_with(&app, "GET", "/v1/models", first).await,
            S::UNAUTHORIZED
        );

        let ana = app.login("ana", "another-password").await;
        let second = make_key(&app, &ana, json!({"name": "two"})).await["key"].clone();
        let second = second.as_str().unwrap();
        assert_eq!(status_with(&app, "GET", "/v1/models", second).await, S::OK);
        assert_eq!(set_disabled(&app, &root, true).await, S::OK);
        assert_eq!(
            status_with(&app, "GET", "/v1/models", second).await,
            S::UNAUTHORIZED
        );
        // Enabling the account again does not bring its keys back.
        assert_eq!(set_disabled(&app, &root, false).await, S::OK);
        assert_eq!(
            status_with(&app, "GET", "/v1/models", second).await,
            S::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn expired_malformed_and_unknown_keys_are_refused() {
    let app = TestApp::spawn().await;
    let (_, ana) = admin_and_user(&app).await;
    // A key that expired yesterday, stored as the server would store it.
    let db = mongars::wiring::database::open_database(&app.settings)
        .await
        .unwrap();
    let ana_name = mongars_core::domain::Username::parse("ana").unwrap();
    let owner = app.app_auth.principal_of(&ana_name).await.unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::days(2);
    let name = mongars_core::domain::KeyName::parse("old").unwrap();
    let old =
        mongars_core::domain::NewApiKey::generate(owner.id, owner.version, name, long_ago, Some(1));
    let old = old.unwrap();
    use mongars_core::ports::ApiKeyRepository;
    mongars_store::SqlApiKeyRepository::new(db)
        .insert(&old)
        .await
        .unwrap();
    assert_eq!(
        status_with(&app, "GET", "/v1/models", &old.secret).await,
        S::UNAUTHORIZED
    );
    let (_, listed) = status_json(app.get(KEYS, Some(&ana)).await).await;
    assert_eq!(listed["keys"], json!([]), "expired keys are not listed");

    let unknown = format!("mg_{}", "0".repeat(64));
    for bad in [unknown.as_str(), "mg_short", "mg_"] {
        assert_eq!(
            status_with(&app, "GET", "/v1/models", bad).await,
            S::UNAUTHORIZED,
            "{bad}"
        );
    }
    for body in [
        json!({"name": ""}),
        json!({"name": "n".repeat(65)}),
        json!({"name": "x", "expires_in_days": 0}),
        json!({"name": "x", "expires_in_days": 3651}),
        json!({"name": "x", "other": 1}),
    ] {
        let resp = app.post_json(KEYS, body.clone(), Some(&ana)).await;
        assert_eq!(
            api_error(resp, S::UNPROCESSABLE_ENTITY, &body.to_string()).await,
            "request.validation"
        );
    }
}

#[tokio::test]
async fn a_socket_opened_with_a_key_closes_when_the_key_is_revoked() {
    let app = TestApp::spawn_with(|s| {
        s.realtime.ping_interval_secs = 1;
        s.realtime.pong_timeout_secs = 60;
    })
    .await;
    let (_, ana) = admin_and_user(&app).await;
    let made = make_key(&app, &ana, json!({"name": "bot"})).await;
    let key = made["key"].as_str().unwrap();
    let mut socket = app.socket(key).await;
    socket.until("history.snapshot").await;
    let mut by_token = app.socket(&ana).await;
    by_token.until("history.snapshot").await;
    let path = format!("{KEYS}/{}", made["id"].as_str().unwrap());
    assert_eq!(
        status_with(&app, "DELETE", &path, &ana).await,
        S::NO_CONTENT
    );
    assert_eq!(socket.close_code(Duration::from_secs(20)).await, Some(1008));
    // The owner's own session is not affected.
    by_token
        .send(json!({"id": "p", "type": "client.ping"}))
        .await;
    assert_eq!(by_token.until("ack").await["payload"]["status"], "ok");
}
