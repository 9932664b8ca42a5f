//! Login, registration, user list, password change, first-admin bootstrap.

use crate::common::{TestApp, status_json};
use mongars_core::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admin_token_from_oauth_form_lists_users() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "correct-horse-1", Role::Admin).await;
    app.add_user("bob", "battery-staple", Role::User).await;

    let (status, body) = status_json(app.post_token("alice", "correct-horse-1").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();

    let (status, body) = status_json(app.get("/api/v1/user/list", Some(token)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["users"], json!(["alice", "bob"]));
    assert_eq!(body["details"][0]["is_admin"], true);
    assert_eq!(body["details"][1]["username"], "bob");

    let bob = app.login("bob", "battery-staple").await;
    let (status, body) = status_json(app.get("/api/v1/user/list", Some(&bob)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "auth.forbidden");
    app.shutdown().await;
}

#[tokio::test]
async fn json_login_reports_role_and_expiry() {
    let app = TestApp::spawn().await;
    app.add_user("Alice", "correct-horse-1", Role::Admin).await;
    // Usernames are case-insensitive at login.
    let resp = app
        .post_json(
            "/api/v1/auth/login",
            json!({"username": "alice", "password": "correct-horse-1"}),
            None,
        )
        .await;
    let (status, body) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["admin"], true);
    assert_eq!(body["token_type"], "bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "correct-horse-1", Role::User).await;
    let wrong = app.post_token("alice", "nope-nope").await;
    let unknown = app.post_token("mallory", "nope-nope").await;
    let invalid_name = app.post_token("bad name!", "nope-nope").await;
    for resp in [wrong, unknown, invalid_name] {
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(
            body,
            json!({"detail": "Invalid credentials", "code": "auth.invalid_credentials"})
        );
    }
}

#[tokio::test]
async fn login_input_is_validated_at_the_edge() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({"username": "", "password": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "a".repeat(151), "password": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"username": "a", "password": "p".repeat(257)}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (json!({"username": "a"}), StatusCode::UNPROCESSABLE_ENTITY),
    ];
    for (body, expected) in cases {
        let (status, err) =
            status_json(app.post_json("/api/v1/auth/login", body, None).await).await;
        assert_eq!(status, expected);
        assert_eq!(err["code"], "request.validation");
    }
    let resp = app
        .client
        .post(app.url("/token"))
        .form(&[
            ("username", "a"),
            ("password", "b"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["code"], "auth.unsupported_grant_type");
}

#[tokio::test]
async fn registration_is_admin_only_by_default() {
    let app = TestApp::spawn().await;
    app.add_user("root", "root-password", Role::Admin).await;
    app.add_user("bob", "bob-password", Role::User).await;
    let new = json!({"username": "carol", "password": "carol-password"});

    let (status, body) = status_json(
        app.post_json("/api/v1/user/register", new.clone(), None)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.token_missing"))
    );

    let bob = app.login("bob", "bob-password").await;
    let (status, _) = status_json(
        app.post_json("/api/v1/user/register", new.clone(), Some(&bob))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let root = app.login("root", "root-password").await;
    let (status, body) = status_json(
        app.post_json("/api/v1/user/register", new.clone(), Some(&root))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "registered", "is_admin": false}));
    app.login("carol", "carol-password").await;

    let dup = json!({"username": "CAROL", "password": "another-password"});
    let (status, body) = status_json(
        app.post_json("/api/v1/user/register", dup, Some(&root))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("user.exists"))
    );

    for bad in [
        json!({"username": "has space", "password": "long-enough"}),
        json!({"username": "x".repeat(151), "password": "long-enough"}),
        json!({"username": "short", "password": "1234567"}),
    ] {
        let (status, body) = status_json(
            app.post_json("/api/v1/user/register", bad, Some(&root))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["errors"][0]["field"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn open_registration_lets_anyone_sign_up() {
    let app = TestApp::spawn_with(|s| s.auth.open_registration = true).await;
    let new = json!({"username": "dora", "password": "dora-password"});
    let (status, body) = status_json(app.post_json("/api/v1/user/register", new, None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A bad token is still refused, not treated as anonymous.
    let again = json!({"username": "eve", "password": "eve-password"});
    let (status, _) = status_json(
        app.post_json("/api/v1/user/register", again, Some("garbage"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn password_change_revokes_older_tokens() {
    let app = TestApp::spawn().await;
    app.add_user("bob", "old-password", Role::User).await;
    let before = app.login("bob", "old-password").await;

    let wrong = json!({"old_password": "not-it-at-all", "new_password": "new-password"});
    let (status, body) = status_json(
        app.post_json("/api/v1/user/change-password", wrong, Some(&before))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.wrong_password"))
    );

    let short = json!({"old_password": "old-password", "new_password": "short"});
    let (status, _) = status_json(
        app.post_json("/api/v1/user/change-password", short, Some(&before))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let change = json!({"old_password": "old-password", "new_password": "new-password"});
    let (status, body) = status_json(
        app.post_json("/api/v1/user/change-password", change, Some(&before))
            .await,
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "changed"}))
    );

    let (status, body) = status_json(app.get("/api/v1/user/list", Some(&before)).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.token_invalid"))
    );
    assert_eq!(
        app.post_token("bob", "old-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let after = app.login("bob", "new-password").await;
    let (status, _) = status_json(app.get("/api/v1/user/list", Some(&after)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "valid token, not an admin");
}

#[tokio::test]
async fn disabling_an_account_revokes_and_blocks_login() {
    let app = TestApp::spawn().await;
    app.add_user("root", "root-password", Role::Admin).await;
    let token = app.login("root", "root-password").await;
    let name = mongars_core::domain::Username::parse("root").unwrap();
    app.app_auth.set_disabled(&name, true).await.unwrap();
    assert_eq!(
        app.get("/api/v1/user/list", Some(&token)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.post_token("root", "root-password").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.app_auth.set_disabled(&name, false).await.unwrap();
    app.login("root", "root-password").await;
}

#[tokio::test]
async fn bootstrap_creates_the_first_admin_once() {
    let app = TestApp::spawn().await;
    let body = json!({"username": "first", "password": "first-password"});
    let (status, resp) = status_json(
        app.post_json("/api/v1/auth/bootstrap-admin", body, None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        resp,
        json!({"created": true, "username": "first", "admin": true})
    );
    let token = app.login("first", "first-password").await;
    assert_eq!(
        app.get("/api/v1/user/list", Some(&token)).await.status(),
        StatusCode::OK
    );

    let again = json!({"username": "second", "password": "second-password"});
    let (status, resp) = status_json(
        app.post_json("/api/v1/auth/bootstrap-admin", again, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (StatusCode::CONFLICT, Some("bootstrap.admin_exists"))
    );
}

#[tokio::test]
async fn bootstrap_can_be_disabled_and_settings_can_name_the_admin() {
    let app = TestApp::spawn_with(|s| {
        s.bootstrap.endpoint_enabled = false;
        s.bootstrap.admin_username = "ops".into();
        s.bootstrap.admin_password = mongars_config::Secret::new("ops-password");
    })
    .await;
    let body = json!({"username": "first", "password": "first-password"});
    let (status, resp) = status_json(
        app.post_json("/api/v1/auth/bootstrap-admin", body, None)
            .await,
    )
    .await;
    assert_eq!(
        (status, resp["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("bootstrap.disabled"))
    );
    let (status, body) = status_json(
        app.post_json(
            "/api/v1/auth/login",
            json!({"username": "ops", "password": "ops-password"}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["admin"].as_bool()),
        (StatusCode::OK, Some(true))
    );
}

#[tokio::test]
async fn accounts_work_the_same_on_postgres() {
    let Some(url) = crate::common::postgres_url().await else {
        mongars_store::testing::skipped("no PostgreSQL (MONGARS_TEST_POSTGRES_URL not set)");
        return;
    };
    let app = TestApp::spawn_with(|s| s.database.url = mongars_config::Secret::new(url)).await;
    let body = json!({"username": "pgadmin", "password": "pg-password"});
    let (status, _) = status_json(
        app.post_json("/api/v1/auth/bootstrap-admin", body, None)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = app.login("PGADMIN", "pg-password").await;
    let new = json!({"username": "pguser", "password": "pguser-password"});
    assert_eq!(
        app.post_json("/api/v1/user/register", new, Some(&token))
            .await
            .status(),
        StatusCode::OK
    );
    let (_, body) = status_json(app.get("/api/v1/user/list", Some(&token)).await).await;
    assert_eq!(body["users"], json!(["pgadmin", "pguser"]));
    let (status, body) = status_json(app.get("/ready", None).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.shutdown().await;
}

#[tokio::test]
async fn admins_disable_and_enable_accounts_over_http() {
    let app = TestApp::spawn().await;
    app.add_user("root", "secret-password", Role::Admin).await;
    app.add_user("ana", "secret-password", Role::User).await;
    let root = app.login("root", "secret-password").await;
    let ana = app.login("ana", "secret-password").await;
    let patch = |name: &str, token: &str, body: serde_json::Value| {
        app.client
            .patch(app.url(&format!("/api/v1/user/{name}")))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let resp = patch("ana", &ana, json!({"disabled": true})).await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "users cannot");
    let resp = patch("root", &root, json!({"disabled": true}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "not oneself");
    let (status, body) = status_json(
        patch("ana", &root, json!({"disabled": true}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["disabled"], true);
    let (status, _) = status_json(app.get("/api/v1/profile", Some(&ana)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "her tokens are revoked");
    let (_, list) = status_json(app.get("/api/v1/user/list", Some(&root)).await).await;
    let ana_row = list["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ana")
        .unwrap()
        .clone();
    assert_eq!(ana_row["disabled"], true);
    let (status, body) = status_json(
        patch("ana", &root, json!({"disabled": false}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    app.login("ana", "secret-password").await;
    let resp = patch("nobody", &root, json!({"disabled": true}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = patch("ana", &root, json!({"disabled": "yes"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
