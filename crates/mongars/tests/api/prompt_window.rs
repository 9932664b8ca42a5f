//! The history window of long conversations: it moves in steps, so that
//! most prompts begin exactly as the one before and the engine's prompt
//! cache reads only what is new, also once working memory is full and
//! trimmed at every turn.

use crate::common::TestApp;
use crate::conversation::user;
use axum::http::StatusCode;
use mongars_core::domain::ChatRole;
use mongars_llm::scripted::{Script, ScriptedBackend};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn the_history_window_keeps_its_start_for_several_turns_after_working_memory_fills() {
    let backend = Arc::new(ScriptedBackend::new(Script::Reply("Noted.".into())));
    let app = TestApp::spawn_scripted(
        |s| {
            s.memory.working.max_turns = 6;
            s.conversation.history_turns = 4;
            s.conversation.rate_limit_burst = 100;
        },
        backend.clone(),
    )
    .await;
    let token = user(&app, "ana").await;
    for i in 0..20 {
        let resp = app
            .post_json(
                "/api/v1/conversation/chat",
                json!({"message": format!("message {i}"), "session_id": "long"}),
                Some(&token),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    // The oldest remembered question of each prompt.
    let oldest: Vec<Option<String>> = backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            let users: Vec<&str> = r
                .messages
                .iter()
                .filter(|m| m.role == ChatRole::User)
                .map(|m| m.content.as_str())
                .collect();
            (users.len() > 1).then(|| users[0].to_string())
        })
        .collect();
    assert_eq!(oldest.len(), 20);
    // With 4 turns of history the window moves by 2 turns every 2 turns:
    // never twice in a row, well past the sixth turn where working memory
    // started trimming.
    let moved: Vec<bool> = oldest.windows(2).map(|w| w[0] != w[1]).collect();
    for (i, pair) in moved.windows(2).enumerate().skip(2) {
        assert!(
            !(pair[0] && pair[1]),
            "the window moved at turns {} and {}: {oldest:?}",
            i + 2,
            i + 3
        );
    }
    assert!(moved.iter().filter(|m| **m).count() >= 6, "{oldest:?}");
}
