//! Streamed chat over Server-Sent Events on a scripted backend: events,
//! failures mid-stream, and a client leaving.

use crate::common::{TestApp, eventually};
use crate::conversation::{app_with, stored_turns, user};
use mongars_core::domain::TurnStatus;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event.to_string(), serde_json::from_str(data).ok()?))
        })
        .collect()
}

#[tokio::test]
async fn streamed_chat_sends_tokens_then_done() {
    let (app, _) = app_with(Script::Reply("one two three".into())).await;
    let token = user(&app, "ana").await;
    let resp = app
        .post_json(
            "/api/v1/conversation/chat/stream",
            json!({"message": "count"}),
            Some(&token),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_events(&resp.text().await.unwrap());
    let deltas: String = events
        .iter()
        .filter(|(e, _)| e == "token")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, "one two three");
    let (last, done) = events.last().unwrap();
    assert_eq!(last, "done");
    assert_eq!(done["response"], "one two three");
    assert!(done["speech_turn"]["segments"].is_array());
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_an_error_event() {
    let (app, _) = app_with(Script::BreakAfter(2, "one two three four".into())).await;
    let token = user(&app, "ana").await;
    let resp = app
        .post_json(
            "/api/v1/conversation/chat/stream",
            json!({"message": "count"}),
            Some(&token),
        )
        .await;
    let events = sse_events(&resp.text().await.unwrap());
    let (last, err) = events.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(err["code"], "llm.backend_failed");
    assert_eq!(
        stored_turns(&app, "ana").await[0].status,
        TurnStatus::Failed
    );
}

#[tokio::test]
async fn leaving_mid_stream_stops_generation() {
    let backend = Arc::new(
        ScriptedBackend::new(Script::Reply("word ".repeat(500)))
            .with_delay(Duration::from_millis(20)),
    );
    let app = TestApp::spawn_scripted(|_| {}, backend.clone()).await;
    let token = user(&app, "ana").await;
    let mut resp = app
        .post_json(
            "/api/v1/conversation/chat/stream",
            json!({"message": "talk"}),
            Some(&token),
        )
        .await;
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("token"));
    assert_eq!(backend.active(), 1);
    drop(resp);
    eventually(
        Duration::from_secs(30),
        "generation stops after the client left",
        || async { backend.active() == 0 },
    )
    .await;
    eventually(Duration::from_secs(30), "the turn is ended", || async {
        stored_turns(&app, "ana").await[0].status != TurnStatus::Pending
    })
    .await;
    let turns = stored_turns(&app, "ana").await;
    assert_eq!(turns[0].status, TurnStatus::Failed);
    assert_eq!(
        turns[0].error_code.as_deref(),
        Some("conversation.cancelled")
    );
}
