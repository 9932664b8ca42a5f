//! Failed logins are throttled per username and per client address.

use crate::common::{TestApp, status_json};
use mongars_core::domain::Role;
use reqwest::StatusCode;

#[tokio::test]
async fn twenty_wrong_passwords_then_429_then_the_window_ends() {
    let app = TestApp::spawn_with(|s| {
        s.auth.throttle.window_secs = 2;
        s.auth.throttle.max_failures_per_user = 5;
        s.auth.throttle.max_failures_per_address = 50;
    })
    .await;
    app.add_user("alice", "correct-horse-1", Role::User).await;

    let mut statuses = Vec::new();
    for _ in 0..20 {
        let resp = app.post_token("alice", "wrong-password").await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            let (_, body) = status_json(resp).await;
            assert_eq!(body["code"], "auth.throttled");
            statuses.push(429);
        } else {
            statuses.push(resp.status().as_u16());
        }
    }
    assert_eq!(&statuses[..5], &[401; 5]);
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");

    // While throttled even the right password is refused.
    assert_eq!(
        app.post_token("alice", "correct-horse-1").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        app.post_token("alice", "correct-horse-1").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn one_address_guessing_many_usernames_is_throttled() {
    let app = TestApp::spawn_with(|s| {
        s.auth.throttle.max_failures_per_user = 100;
        s.auth.throttle.max_failures_per_address = 4;
    })
    .await;
    for i in 0..4 {
        assert_eq!(
            app.post_token(&format!("user{i}"), "x").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = app.post_token("user9", "x").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn success_resets_the_username_counter() {
    let app = TestApp::spawn_with(|s| s.auth.throttle.max_failures_per_user = 3).await;
    app.add_user("bob", "bob-password", Role::User).await;
    for _ in 0..2 {
        app.post_token("bob", "wrong").await;
    }
    app.login("bob", "bob-password").await;
    for _ in 0..2 {
        assert_eq!(
            app.post_token("bob", "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    app.login("bob", "bob-password").await;
}
