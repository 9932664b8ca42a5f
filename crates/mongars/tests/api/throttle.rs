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
    // The window is counted on the app's clock, which moves only when told.
    app.clock.freeze();

    let mut statuses = Vec::new();
    for _ in 0..20 {
        let resp = app.post_token("alice", "wrong-password").await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(retry, 2, "Retry-After");
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
    app.clock.advance(std::time::Duration::from_millis(2001));
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

/// 40 wrong passwords at once for one user, spread over `apps` (replicas
/// sharing one database): (401s, 429s).
async fn parallel_guesses(apps: &[&TestApp]) -> (usize, usize) {
    let calls = (0..40).map(|i| {
        let app = apps[i % apps.len()];
        let req = app
            .client
            .post(app.url("/token"))
            .form(&[("username", "victim"), ("password", "wrong-guess")]);
        async move { req.send().await.unwrap().status() }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(
        count(StatusCode::UNAUTHORIZED) + count(StatusCode::TOO_MANY_REQUESTS),
        40,
        "{statuses:?}"
    );
    (
        count(StatusCode::UNAUTHORIZED),
        count(StatusCode::TOO_MANY_REQUESTS),
    )
}

fn limits(s: &mut mongars_config::Settings) {
    s.auth.throttle.max_failures_per_user = 5;
    s.auth.throttle.max_failures_per_address = 1000;
    s.auth.max_concurrent_hashes = 8;
}

#[tokio::test]
async fn parallel_guesses_never_get_past_the_limit() {
    for db in crate::common::databases().await {
        let app = TestApp::spawn_with(|s| {
            crate::common::use_db(s, &db);
            limits(s);
        })
        .await;
        app.add_user("victim", "the-real-password", Role::User)
            .await;
        assert_eq!(parallel_guesses(&[&app]).await, (5, 35), "{db:?}");
    }
}

#[tokio::test]
async fn replicas_sharing_a_database_share_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("shared.db").display());
    let mut shared = vec![Some(sqlite)];
    if let Some(pg) = crate::common::postgres_url().await {
        shared.push(Some(pg));
    }
    for db in shared {
        let a = TestApp::spawn_with(|s| {
            crate::common::use_db(s, &db);
            limits(s);
        })
        .await;
        let b = TestApp::spawn_with(|s| {
            crate::common::use_db(s, &db);
            limits(s);
        })
        .await;
        a.add_user("victim", "the-real-password", Role::User).await;
        assert_eq!(parallel_guesses(&[&a, &b]).await, (5, 35), "{db:?}");
    }
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let app = TestApp::spawn_with(|s| s.auth.throttle.max_failures_per_user = 5).await;
    app.add_user("ana", "the-real-password", Role::User).await;
    let token = app.login("ana", "the-real-password").await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let resp = app
            .post_json(
                "/api/v1/user/change-password",
                serde_json::json!({"old_password": "guess", "new_password": "whatever-new"}),
                Some(&token),
            )
            .await;
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(resp.headers().contains_key("retry-after"));
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..5], &[403; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The right password is refused too while the window lasts, and logins
    // share the counter.
    let right = app
        .post_json(
            "/api/v1/user/change-password",
            serde_json::json!({"old_password": "the-real-password", "new_password": "whatever-new"}),
            Some(&token),
        )
        .await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        app.post_token("ana", "the-real-password").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn tickets_are_rate_limited_per_user() {
    let app = TestApp::spawn_with(|s| {
        s.realtime.ticket_burst = 3;
        s.realtime.tickets_per_minute = 1;
    })
    .await;
    app.add_user("ana", "secret-password", Role::User).await;
    app.add_user("bob", "secret-password", Role::User).await;
    let ana = app.login("ana", "secret-password").await;
    let bob = app.login("bob", "secret-password").await;
    for _ in 0..3 {
        app.ticket(&ana).await;
    }
    let resp = app
        .post_json("/api/v1/auth/ws/ticket", serde_json::json!({}), Some(&ana))
        .await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let (_, body) = status_json(resp).await;
    assert_eq!(body["code"], "rate_limited");
    app.ticket(&bob).await; // others are not affected
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw() {
    let app = TestApp::spawn_with(|s| {
        s.server.trust_forwarded_for = true;
        s.auth.throttle.max_failures_per_user = 1000;
        s.auth.throttle.max_failures_per_address = 3;
    })
    .await;
    let guess = |forwarded: String, user: &'static str| {
        let req = app
            .client
            .post(app.url("/token"))
            .header("x-forwarded-for", forwarded)
            .form(&[("username", user), ("password", "x")]);
        async move { req.send().await.unwrap().status() }
    };
    // An attacker forging the first entry is still one address.
    for i in 0..3 {
        assert_eq!(
            guess(format!("10.9.9.{i}, 203.0.113.7"), "a").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        guess("10.9.9.99, 203.0.113.7".into(), "b").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Someone else behind the same proxy is not locked out.
    assert_eq!(
        guess("198.51.100.4".into(), "c").await,
        StatusCode::UNAUTHORIZED
    );
}
