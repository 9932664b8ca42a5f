//! The chat pipeline through HTTP, on a scripted backend: shapes, history,
//! bad input, backend failures, rate limits, budgets and cancellation.

use crate::common::{TestApp, status_json};
use mongars_core::domain::{Role, TurnStatus};
use mongars_core::ports::LlmError;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const CHAT: &str = "/api/v1/conversation/chat";

pub(crate) async fn app_with(script: Script) -> (TestApp, Arc<ScriptedBackend>) {
    let backend = Arc::new(ScriptedBackend::new(script));
    let app = TestApp::spawn_scripted(|_| {}, backend.clone()).await;
    (app, backend)
}

pub(crate) async fn user(app: &TestApp, name: &str) -> String {
    app.add_user(name, "secret-password", Role::User).await;
    app.login(name, "secret-password").await
}

pub(crate) async fn stored_turns(app: &TestApp, name: &str) -> Vec<mongars_core::domain::Turn> {
    let db = mongars::wiring::database::open_database(&app.settings)
        .await
        .unwrap();
    let uid = app
        .app_auth
        .find(&mongars_core::domain::Username::parse(name).unwrap())
        .await
        .unwrap()
        .id;
    mongars_store::all_turns(&db, uid).await.unwrap()
}

#[tokio::test]
async fn chat_returns_the_reply_with_speech_and_history_shows_it_at_once() {
    let (app, backend) =
        app_with(Script::Reply("Paris is the capital. It is lovely!".into())).await;
    let token = user(&app, "ana").await;
    let (status, body) = status_json(
        app.post_json(
            CHAT,
            json!({"message": "  What is the capital of France?\u{7}  "}),
            Some(&token),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], "Paris is the capital. It is lovely!");
    let confidence = body["confidence"].as_f64().unwrap();
    assert!((confidence - (-0.1f64).exp()).abs() < 0.001, "{confidence}");
    assert!(body["processing_time"].as_f64().unwrap() >= 0.0);
    let speech = &body["speech_turn"];
    assert_eq!(speech["segments"].as_array().unwrap().len(), 2);
    assert_eq!(speech["segments"][0]["text"], "Paris is the capital.");
    assert!(speech["average_words_per_second"].as_f64().unwrap() > 1.0);
    assert!(speech["turn_id"].is_string() && speech["created_at"].is_string());

    // The prompt had the system prompt and the sanitised message.
    let seen = backend.seen.lock().unwrap()[0].clone();
    assert_eq!(
        seen.messages.first().unwrap().role,
        mongars_core::domain::ChatRole::System
    );
    assert_eq!(
        seen.messages.last().unwrap().content,
        "What is the capital of France?"
    );
    // It names the account, so that an engine reuses its cache only for it.
    assert!(seen.account.is_some_and(|id| id > 0), "{:?}", seen.account);

    let (status, history) =
        status_json(app.get("/api/v1/conversation/history", Some(&token)).await).await;
    assert_eq!(status, StatusCode::OK);
    let items = history.as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["user_id"], "ana");
    assert_eq!(items[0]["query"], "What is the capital of France?");
    assert_eq!(items[0]["response"], "Paris is the capital. It is lovely!");
    assert!(items[0]["timestamp"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn history_of_the_session_reaches_the_next_prompt() {
    let (app, backend) = app_with(Script::Reply("Noted.".into())).await;
    let token = user(&app, "ana").await;
    for (msg, session) in [
        ("first in a", "a"),
        ("only in b", "b"),
        ("second in a", "a"),
    ] {
        let resp = app
            .post_json(
                CHAT,
                json!({"message": msg, "session_id": session}),
                Some(&token),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let seen = backend.seen.lock().unwrap();
    let last: Vec<&str> = seen[2]
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert!(
        last.contains(&"first in a") && !last.contains(&"only in b"),
        "{last:?}"
    );
    assert_eq!(*last.last().unwrap(), "second in a");
}

#[tokio::test]
async fn bad_input_gets_its_status_and_writes_nothing() {
    let (app, backend) = app_with(Script::Reply("unused".into())).await;
    let token = user(&app, "ana").await;
    let long = "x".repeat(10_000);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        (
            json!({"message": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            json!({"message": "   \n\t "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            json!({"message": long}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            json!({"message": 5}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            json!({}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
        (
            json!({"message": "hi", "session_id": "no spaces allowed"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "request.validation",
        ),
    ];
    for (body, status, code) in cases {
        for path in [CHAT, "/api/v1/conversation/chat/stream"] {
            let (got, err) =
                status_json(app.post_json(path, body.clone(), Some(&token)).await).await;
            assert_eq!(
                (got, err["code"].as_str()),
                (status, Some(code)),
                "{path} {body}"
            );
        }
    }
    let raw = |bytes: &'static [u8], content_type: &'static str, auth: bool| {
        let mut req = app
            .client
            .post(app.url(CHAT))
            .header("content-type", content_type)
            .body(bytes);
        if auth {
            req = req.bearer_auth(&token);
        }
        req.send()
    };
    let (status, err) = status_json(
        raw(b"{\"message\": \"caf\xff\"}", "application/json", true)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("request.malformed"))
    );
    let (status, err) = status_json(
        raw(b"message=hi", "application/x-www-form-urlencoded", true)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("request.unsupported_media_type")
        )
    );
    let (status, err) = status_json(
        raw(b"{\"message\": \"hi\"}", "application/json", false)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.token_missing"))
    );

    assert!(
        stored_turns(&app, "ana").await.is_empty(),
        "nothing half-written"
    );
    assert!(
        backend.seen.lock().unwrap().is_empty(),
        "the model was never called"
    );
}

#[tokio::test]
async fn a_failing_backend_is_502_and_the_message_is_kept() {
    let (app, _) = app_with(Script::Refuse(LlmError::Failed("engine exploded".into()))).await;
    let token = user(&app, "ana").await;
    let (status, err) = status_json(
        app.post_json(CHAT, json!({"message": "hello?"}), Some(&token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(err["code"], "llm.all_backends_failed");
    assert!(
        !err.to_string().contains("exploded"),
        "internal text leaked: {err}"
    );
    let turns = stored_turns(&app, "ana").await;
    assert_eq!(turns.len(), 1);
    assert_eq!(
        (turns[0].query.as_str(), turns[0].status),
        ("hello?", TurnStatus::Failed)
    );
    assert_eq!(
        turns[0].error_code.as_deref(),
        Some("llm.all_backends_failed")
    );
    // Failed turns are not offered as history.
    let (_, history) =
        status_json(app.get("/api/v1/conversation/history", Some(&token)).await).await;
    assert_eq!(history, json!([]));
}

#[tokio::test]
async fn a_full_queue_is_503_with_retry_after() {
    let (app, _) = app_with(Script::Refuse(LlmError::Overloaded {
        retry_after_secs: 3,
    }))
    .await;
    let token = user(&app, "ana").await;
    let resp = app
        .post_json(CHAT, json!({"message": "hello?"}), Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "3");
    let (_, err) = status_json(resp).await;
    assert_eq!(err["code"], "llm.overloaded");
}

#[tokio::test]
async fn the_rate_limit_answers_429_and_refusals_cost_nothing() {
    let backend = Arc::new(ScriptedBackend::new(Script::Reply("ok".into())));
    let app = TestApp::spawn_scripted(
        |s| {
            s.conversation.rate_limit_burst = 2;
            s.conversation.rate_limit_per_minute = 60;
        },
        backend,
    )
    .await;
    // Time moves only when the test says so, however slow the machine.
    app.clock.freeze();
    let token = user(&app, "ana").await;
    let other = user(&app, "ben").await;
    for _ in 0..2 {
        assert_eq!(
            app.post_json(CHAT, json!({"message": "hi"}), Some(&token))
                .await
                .status(),
            StatusCode::OK
        );
    }
    for _ in 0..3 {
        let resp = app
            .post_json(CHAT, json!({"message": "hi"}), Some(&token))
            .await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_eq!(status_json(resp).await.1["code"], "rate_limited");
    }
    assert_eq!(
        app.post_json(CHAT, json!({"message": "hi"}), Some(&other))
            .await
            .status(),
        StatusCode::OK
    );
    app.clock.advance(Duration::from_millis(999));
    let early = app
        .post_json(CHAT, json!({"message": "hi"}), Some(&token))
        .await;
    assert_eq!(early.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(early.headers()["retry-after"], "1");
    app.clock.advance(Duration::from_millis(1));
    // One second refilled one token: the refusals consumed none.
    assert_eq!(
        app.post_json(CHAT, json!({"message": "hi"}), Some(&token))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.post_json(CHAT, json!({"message": "hi"}), Some(&token))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(stored_turns(&app, "ana").await.len(), 3);
}

#[tokio::test]
async fn old_turns_give_way_to_the_budget_and_a_message_too_large_is_413() {
    // 60-token window, 20 for the reply: 40 for the prompt.
    let backend = Arc::new(
        ScriptedBackend::new(Script::Reply("short answer".into())).with_context_window(60),
    );
    let app = TestApp::spawn_scripted(
        |s| {
            s.llm.role_mut(false).max_tokens = 20;
            s.conversation.system_prompt = "Be brief.".into();
        },
        backend.clone(),
    )
    .await;
    let token = user(&app, "ana").await;
    for i in 0..4 {
        let msg = format!("message number {i} with a few words");
        assert_eq!(
            app.post_json(CHAT, json!({"message": msg}), Some(&token))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let seen = backend.seen.lock().unwrap().last().unwrap().clone();
    let contents: Vec<&str> = seen.messages.iter().map(|m| m.content.as_str()).collect();
    assert!(
        !contents.iter().any(|c| c.contains("number 0")),
        "oldest dropped: {contents:?}"
    );
    assert!(
        contents.iter().any(|c| c.contains("number 2")),
        "recent kept: {contents:?}"
    );
    drop(seen);

    let huge = "word ".repeat(60);
    let (status, err) = status_json(
        app.post_json(CHAT, json!({"message": huge}), Some(&token))
            .await,
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("conversation.prompt_too_large")
        )
    );
    assert_eq!(
        stored_turns(&app, "ana").await.len(),
        4,
        "a refused message is not stored"
    );
}

#[tokio::test]
async fn history_is_private_and_limited() {
    let (app, _) = app_with(Script::Reply("ok".into())).await;
    let ana = user(&app, "ana").await;
    let ben = user(&app, "ben").await;
    app.add_user("root", "root-password", Role::Admin).await;
    let root = app.login("root", "root-password").await;
    for i in 0..3 {
        app.post_json(CHAT, json!({"message": format!("ana {i}")}), Some(&ana))
            .await;
    }
    let get = |q: &str, t: &str| {
        let (q, t) = (q.to_string(), t.to_string());
        let app = &app;
        async move {
            status_json(
                app.get(&format!("/api/v1/conversation/history{q}"), Some(&t))
                    .await,
            )
            .await
        }
    };
    let (status, _) = get("?user_id=ana", &ben).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, items) = get("?user_id=ana&limit=2", &root).await;
    assert_eq!(status, StatusCode::OK);
    let queries: Vec<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["query"].as_str().unwrap())
        .collect();
    assert_eq!(queries, ["ana 2", "ana 1"]);
    assert_eq!(get("", &ben).await.1, json!([]));
    for bad in ["?limit=0", "?limit=101", "?limit=ten"] {
        assert_eq!(
            get(bad, &ana).await.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    assert_eq!(get("?user_id=nobody", &root).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn direct_llm_chat_uses_no_history_and_stores_nothing() {
    let (app, backend) = app_with(Script::Reply("Direct answer.".into())).await;
    let token = user(&app, "ana").await;
    app.post_json(CHAT, json!({"message": "remember me"}), Some(&token))
        .await;
    let (status, body) = status_json(
        app.post_json("/llm/chat", json!({"message": "hi"}), Some(&token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"], "Direct answer.");
    assert!(body["speech_turn"]["segments"].is_array());
    let seen = backend.seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(seen.messages.len(), 1, "no system prompt, no history");
    assert_eq!(stored_turns(&app, "ana").await.len(), 1);

    let (status, health) = status_json(app.get("/llm/health", None).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["backends"][0]["name"], "scripted");
}
