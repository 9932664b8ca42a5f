//! What remote backends say is handled with care: an error text that echoes
//! the backend's key never reaches a client, the unauthenticated health
//! report or the logs, and `Retry-After` is honoured on every backend kind
//! when it fits the request's time, else the next backend answers at once.

use crate::backends::configure;
use crate::common::fake::{Fake, Mode};
use crate::common::{TestApp, status_json};
use crate::conversation::user;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub const KEY: &str = "sk-live-0123456789abcdefSECRETKEY";

pub fn with_key(s: &mut mongars_config::Settings, backend: &str) {
    s.llm.backends.get_mut(backend).unwrap().api_key = mongars_config::Secret::new(KEY);
}

#[tokio::test]
async fn an_error_that_echoes_the_key_never_shows_it() {
    for kind in ["openai", "ollama", "ray"] {
        let fake = Fake::start(Mode::EchoAuth(401)).await;
        let url = match kind {
            "ray" => format!("{}/generate", fake.url),
            _ => fake.url.clone(),
        };
        let app = TestApp::spawn_with(|s| {
            configure(s, kind, &url, &[kind]);
            with_key(s, kind);
        })
        .await;
        let token = user(&app, "ana").await;
        let resp = app
            .post_json(
                "/api/v1/conversation/chat",
                json!({"message": "hi"}),
                Some(&token),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY, "{kind}");
        let text = resp.text().await.unwrap();
        assert!(!text.contains("SECRETKEY"), "{kind}: {text}");
        // The fake did echo it: the key was sent, and sent back.
        let sent = fake.chat_hits()[0].authorization.clone().unwrap();
        assert!(sent.contains(KEY), "{kind}");
        let health = app.get("/llm/health", None).await.text().await.unwrap();
        assert!(!health.contains("SECRETKEY"), "{kind}: {health}");
        assert!(!health.contains("Bearer sk-"), "{kind}: {health}");
    }
}

fn fallback() -> Arc<ScriptedBackend> {
    Arc::new(ScriptedBackend::new(Script::Reply(
        "from the fallback".into(),
    )))
}

/// A server whose `kind` backend is `fake`, with the scripted fallback
/// after it and a 10 s first-token budget; a user's chat through it.
async fn chat_through(kind: &str, fake: &Fake, retries: u32) -> (StatusCode, serde_json::Value) {
    let url = match kind {
        "ray" => format!("{}/generate", fake.url),
        _ => fake.url.clone(),
    };
    let app = TestApp::spawn_scripted(
        |s| {
            configure(s, kind, &url, &[kind, "embedded"]);
            s.llm.resilience.first_token_timeout_ms = 10_000;
            s.llm.backends.get_mut(kind).unwrap().retries = retries;
        },
        fallback(),
    )
    .await;
    let token = user(&app, "ana").await;
    let hi = json!({"message": "hi"});
    status_json(
        app.post_json("/api/v1/conversation/chat", hi, Some(&token))
            .await,
    )
    .await
}

#[tokio::test]
async fn a_retry_after_longer_than_the_request_allows_fails_over_at_once() {
    for kind in ["openai", "ollama", "ray"] {
        let fake = Fake::start(Mode::Status(429, Some(120))).await;
        let (status, body) = chat_through(kind, &fake, 3).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(body["response"], "from the fallback", "{kind}");
        assert_eq!(fake.chat_hits().len(), 1, "{kind}: not retried early");
    }
}

#[tokio::test]
async fn a_retry_after_within_the_request_is_waited_out() {
    for kind in ["openai", "ollama", "ray"] {
        let fake = Fake::start(Mode::Ok("after the wait".into())).await;
        fake.then(&[Mode::Status(429, Some(1))]);
        let (status, body) = chat_through(kind, &fake, 1).await;
        assert_eq!(status, StatusCode::OK, "{kind}: {body}");
        assert_eq!(body["response"], "after the wait", "{kind}");
        let hits = fake.chat_hits();
        assert_eq!(hits.len(), 2, "{kind}");
        let gap = hits[1].at - hits[0].at;
        assert!(
            gap >= Duration::from_millis(950),
            "{kind}: waited only {gap:?}"
        );
    }
}
