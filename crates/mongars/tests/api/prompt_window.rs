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

/// How many earlier turns' notes a prompt replays: its system messages
/// but the first (instructions and facts) and the message's own note.
fn replayed_notes(req: &mongars_core::domain::GenerationRequest) -> usize {
    let m = &req.messages;
    m[1..m.len() - 2]
        .iter()
        .filter(|m| m.role == ChatRole::System)
        .count()
}

#[tokio::test]
async fn recalled_exchanges_are_replayed_only_until_the_window_moves() {
    let Some((app, backend)) = crate::memory::memory_app_with(|s| {
        s.conversation.history_turns = 4;
        s.conversation.rate_limit_burst = 100;
    })
    .await
    else {
        return;
    };
    let token = user(&app, "ana").await;
    let message = "My name is Ana and I work on the Orion project";
    crate::memory::say(&app, &token, message, "monday").await;
    // Both facts stored: the exchange, stored before them, is recallable.
    crate::memory::wait_for(&app, &token, |m| m.len() == 2).await;
    let before = backend.seen.lock().unwrap().len();
    for _ in 0..12 {
        crate::memory::say(&app, &token, message, "long").await;
    }
    let prompts = backend.seen.lock().unwrap()[before..].to_vec();
    // Monday's exchange, outside this session's history, is recalled for
    // every message: each prompt ends with its own note.
    for p in &prompts {
        let own = &p.messages[p.messages.len() - 2];
        assert!(
            own.role == ChatRole::System && own.content.contains("Earlier exchanges"),
            "{:?}",
            p.messages
        );
    }
    // Four turns of history, moving by two: every past turn keeps its note
    // until the window first moves (at the fifth turn); after that only
    // the turns added since the last move do.
    let replayed: Vec<usize> = prompts.iter().map(replayed_notes).collect();
    assert_eq!(replayed, [0, 1, 2, 3, 4, 0, 1, 0, 1, 0, 1, 0]);
    app.shutdown().await;
}
