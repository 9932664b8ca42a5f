//! Hostile and stale tokens are all refused with 401.

use crate::common::{TEST_JWT_SECRET, TestApp, status_json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use mongars_core::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sub: &str, exp: i64) -> Value {
    json!({"sub": sub, "admin": true, "iat": now(), "exp": exp, "jti": "j", "ver": 0})
}

/// Build a JWT by hand: any header, HMAC-SHA256 signature with `key`
/// (or no signature at all).
fn forge(header: Value, payload: &Value, key: Option<&[u8]>) -> String {
    let head = B64.encode(header.to_string());
    let body = B64.encode(payload.to_string());
    let signing_input = format!("{head}.{body}");
    let sig = key.map_or(String::new(), |k| {
        let mut mac = Hmac::<Sha256>::new_from_slice(k).unwrap();
        mac.update(signing_input.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    });
    format!("{signing_input}.{sig}")
}

async fn assert_refused(app: &TestApp, token: &str, why: &str) {
    let (status, body) = status_json(app.get("/api/v1/user/list", Some(token)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
    assert_eq!(body["code"], "auth.token_invalid", "{why}");
}

#[tokio::test]
async fn hostile_tokens_are_refused() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "correct-horse-1", Role::Admin).await;
    let key = TEST_JWT_SECRET.as_bytes();
    let good = claims("alice", now() + 600);

    // The forging helper itself makes tokens the server accepts.
    let control = forge(json!({"alg": "HS256", "typ": "JWT"}), &good, Some(key));
    let (status, _) = status_json(app.get("/api/v1/user/list", Some(&control)).await).await;
    assert_eq!(status, StatusCode::OK, "control token");

    let none = forge(json!({"alg": "none", "typ": "JWT"}), &good, None);
    assert_refused(&app, &none, "alg none").await;
    let none_signed = forge(json!({"alg": "none", "typ": "JWT"}), &good, Some(key));
    assert_refused(&app, &none_signed, "alg none with a signature").await;
    let rs256 = forge(json!({"alg": "RS256", "typ": "JWT"}), &good, Some(key));
    assert_refused(&app, &rs256, "RS256 header").await;
    let hs512 = forge(json!({"alg": "HS512", "typ": "JWT"}), &good, Some(key));
    assert_refused(&app, &hs512, "HS512 header").await;
    let other_key = forge(
        json!({"alg": "HS256"}),
        &good,
        Some(b"another-key-another-key-another-key!!"),
    );
    assert_refused(&app, &other_key, "other key").await;
    let expired = forge(
        json!({"alg": "HS256"}),
        &claims("alice", now() - 120),
        Some(key),
    );
    assert_refused(&app, &expired, "expired").await;
    let stale_version = forge(
        json!({"alg": "HS256"}),
        &json!({"sub": "alice", "admin": true, "iat": now(), "exp": now() + 600, "jti": "j", "ver": 7}),
        Some(key),
    );
    assert_refused(&app, &stale_version, "other token version").await;
    let ghost = forge(
        json!({"alg": "HS256"}),
        &claims("ghost", now() + 600),
        Some(key),
    );
    assert_refused(&app, &ghost, "unknown subject").await;

    // A real token with its payload swapped keeps a signature that no longer matches.
    let real = app.login("alice", "correct-horse-1").await;
    let parts: Vec<&str> = real.split('.').collect();
    let tampered_payload = B64.encode(claims("bob", now() + 9999).to_string());
    let tampered = format!("{}.{}.{}", parts[0], tampered_payload, parts[2]);
    assert_refused(&app, &tampered, "tampered payload").await;
    let mut flipped_sig = parts[2].to_string();
    let last = if flipped_sig.ends_with('A') { 'B' } else { 'A' };
    flipped_sig.pop();
    flipped_sig.push(last);
    assert_refused(
        &app,
        &format!("{}.{}.{flipped_sig}", parts[0], parts[1]),
        "flipped signature",
    )
    .await;

    for junk in ["", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9"] {
        assert_refused(&app, junk, "malformed").await;
    }
}

#[tokio::test]
async fn token_from_before_a_password_change_is_refused() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "correct-horse-1", Role::Admin).await;
    let old = app.login("alice", "correct-horse-1").await;
    let change = json!({"old_password": "correct-horse-1", "new_password": "correct-horse-2"});
    assert_eq!(
        app.post_json("/api/v1/user/change-password", change, Some(&old))
            .await
            .status(),
        StatusCode::OK
    );
    assert_refused(&app, &old, "issued before password change").await;
}

#[tokio::test]
async fn authorization_header_forms() {
    let app = TestApp::spawn().await;
    app.add_user("alice", "correct-horse-1", Role::Admin).await;
    let token = app.login("alice", "correct-horse-1").await;

    let resp = app
        .client
        .get(app.url("/api/v1/user/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let (_, body) = status_json(resp).await;
    assert_eq!(body["code"], "auth.token_missing");

    for header in [format!("Basic {token}"), token.clone(), "Bearer ".into()] {
        let resp = app
            .client
            .get(app.url("/api/v1/user/list"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = app
        .client
        .get(app.url("/api/v1/user/list"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "scheme is case-insensitive");
}
