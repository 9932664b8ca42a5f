//! Every turn ends `complete` or `failed` with a code, whatever happens to
//! the request that started it: a silent backend, a stream that stalls, a
//! reply longer than the request may take, a client that hangs up. On
//! SQLite and PostgreSQL.

use crate::backends::configure;
use crate::common::fake::{Fake, Mode};
use crate::common::{TestApp, databases, eventually, status_json, use_db};
use crate::conversation::{stored_turns, user};
use mongars_core::domain::{Turn, TurnStatus};
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const CHAT: &str = "/api/v1/conversation/chat";
const STREAM: &str = "/api/v1/conversation/chat/stream";

/// Wait until `name` has `n` turns and none is pending; return them.
async fn settled(app: &TestApp, name: &str, n: usize) -> Vec<Turn> {
    eventually(Duration::from_secs(30), "turns settle", || async {
        let turns = stored_turns(app, name).await;
        turns.len() == n && turns.iter().all(|t| t.status != TurnStatus::Pending)
    })
    .await;
    stored_turns(app, name).await
}

fn codes(turns: &[Turn]) -> Vec<(TurnStatus, Option<&str>)> {
    turns
        .iter()
        .map(|t| (t.status, t.error_code.as_deref()))
        .collect()
}

#[tokio::test]
async fn a_silent_backend_fails_the_turn_as_a_timeout_on_both_endpoints() {
    let fake = Fake::start(Mode::Stall).await;
    for db in databases().await {
        let app = TestApp::spawn_with(|s| {
            use_db(s, &db);
            configure(s, "openai", &fake.url, &["openai"]);
        })
        .await;
        let token = user(&app, "ana").await;
        for path in [CHAT, STREAM] {
            let (status, body) = status_json(
                app.post_json(path, json!({"message": "anyone there?"}), Some(&token))
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{path} {body}");
            assert_eq!(body["code"], "llm.timeout", "{path}");
        }
        let turns = settled(&app, "ana", 2).await;
        assert_eq!(
            codes(&turns),
            [(TurnStatus::Failed, Some("llm.timeout")); 2],
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn a_reply_longer_than_the_request_fails_as_request_timeout() {
    for db in databases().await {
        // One word every 200 ms, forty words: longer than a 1 s request.
        let words = vec!["word"; 40].join(" ");
        let slow =
            ScriptedBackend::new(Script::Reply(words)).with_delay(Duration::from_millis(200));
        let app = TestApp::spawn_scripted(
            |s| {
                use_db(s, &db);
                s.server.request_timeout_secs = 1;
                s.llm.resilience.first_token_timeout_ms = 900;
            },
            Arc::new(slow),
        )
        .await;
        let token = user(&app, "ana").await;
        let (status, body) = status_json(
            app.post_json(CHAT, json!({"message": "tell me everything"}), Some(&token))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
        assert_eq!(body["code"], "request.timeout");
        let turns = settled(&app, "ana", 1).await;
        assert_eq!(
            codes(&turns),
            [(TurnStatus::Failed, Some("request.timeout"))]
        );
    }
}

#[tokio::test]
async fn a_client_that_hangs_up_before_the_first_token_leaves_a_cancelled_turn() {
    let fake = Fake::start(Mode::Stall).await;
    for db in databases().await {
        let app = TestApp::spawn_with(|s| {
            use_db(s, &db);
            configure(s, "openai", &fake.url, &["openai"]);
            s.llm.resilience.first_token_timeout_ms = 30_000;
        })
        .await;
        let token = user(&app, "ana").await;
        for path in [CHAT, STREAM] {
            let before = stored_turns(&app, "ana").await.len();
            let req = app
                .client
                .post(app.url(path))
                .bearer_auth(&token)
                .json(&json!({"message": "are you there?"}));
            let call = tokio::spawn(req.send());
            eventually(Duration::from_secs(30), "the turn is stored", || async {
                stored_turns(&app, "ana").await.len() > before
            })
            .await;
            call.abort();
            let turns = settled(&app, "ana", before + 1).await;
            assert_eq!(
                codes(&turns[before..]),
                [(TurnStatus::Failed, Some("conversation.cancelled"))],
                "{path} {db:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_stream_that_stalls_mid_reply_ends_with_a_timeout_event() {
    let fake = Fake::start(Mode::StallAfterFirst).await;
    for db in databases().await {
        let app = TestApp::spawn_with(|s| {
            use_db(s, &db);
            configure(s, "openai", &fake.url, &["openai"]);
            s.llm.resilience.inter_token_timeout_ms = 300;
        })
        .await;
        let token = user(&app, "ana").await;
        let resp = app
            .post_json(STREAM, json!({"message": "go on"}), Some(&token))
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let text = resp.text().await.unwrap();
        assert!(text.contains("event: token"), "{text}");
        let error = text
            .split("\n\n")
            .find(|e| e.starts_with("event: error"))
            .unwrap_or_else(|| panic!("no error event: {text}"));
        assert!(error.contains("\"code\":\"llm.timeout\""), "{error}");
        let turns = settled(&app, "ana", 1).await;
        assert_eq!(codes(&turns), [(TurnStatus::Failed, Some("llm.timeout"))]);
    }
}

#[test]
fn a_first_token_limit_beyond_the_request_timeout_is_refused() {
    let err = mongars_config::load(&mongars_config::LoadOptions {
        file: None,
        env: vec![
            ("MONGARS_SERVER__REQUEST_TIMEOUT_SECS".into(), "10".into()),
            (
                "MONGARS_LLM__RESILIENCE__FIRST_TOKEN_TIMEOUT_MS".into(),
                "30000".into(),
            ),
        ],
    })
    .unwrap_err();
    assert!(
        err.mentions("llm.resilience.first_token_timeout_ms"),
        "{err}"
    );
}
