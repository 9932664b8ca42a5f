//! Long-term memory through HTTP, as new users would meet it: facts told in
//! one session recalled in another, restatements merged, edits and deletes
//! changing what the next prompt recalls, users kept apart, and forget-me.

use crate::common::{TestApp, status_json};
use crate::conversation::user;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHAT: &str = "/api/v1/conversation/chat";

pub(crate) async fn memory_app() -> Option<(TestApp, Arc<ScriptedBackend>)> {
    memory_app_with(|_| {}).await
}

/// A scripted server with the real embedder and `adjust`ed settings, whose
/// every reply is "Noted."; `None` (the test skipped) without the model.
pub(crate) async fn memory_app_with(
    adjust: impl FnOnce(&mut mongars_config::Settings),
) -> Option<(TestApp, Arc<ScriptedBackend>)> {
    if crate::common::shared_embedder().is_none() {
        mongars_store::testing::skipped("the embedding model is missing (run `make models`)");
        return None;
    }
    let backend = Arc::new(ScriptedBackend::new(Script::Reply("Noted.".into())));
    let app = TestApp::spawn_scripted(adjust, backend.clone()).await;
    Some((app, backend))
}

/// Send a chat message; the reply's turn id.
pub(crate) async fn say(app: &TestApp, token: &str, message: &str, session: &str) -> String {
    let (status, body) = status_json(
        app.post_json(
            CHAT,
            json!({"message": message, "session_id": session}),
            Some(token),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["speech_turn"]["turn_id"].as_str().unwrap().to_string()
}

pub(crate) async fn memories(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, body) = status_json(
        app.get(&format!("/api/v1/memories{query}"), Some(token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// Wait (learning runs after the reply) until the memories satisfy `done`.
pub(crate) async fn wait_for(
    app: &TestApp,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let m = memories(app, token, "").await;
        if done(&m) {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "memories never settled: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn context(app: &TestApp, token: &str, turn: &str) -> Value {
    let (status, body) = status_json(
        app.get(
            &format!("/api/v1/conversation/turns/{turn}/context"),
            Some(token),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn texts(m: &[Value]) -> Vec<String> {
    m.iter()
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect()
}

/// The facts block of a system prompt (past exchanges left out).
fn remembered_facts(prompt: &str) -> String {
    let Some(start) = prompt.find("What you remember about the user:") else {
        return String::new();
    };
    let block = &prompt[start..];
    let end = block
        .find("\n\n")
        .or_else(|| block.find("Earlier exchanges"))
        .unwrap_or(block.len());
    block[..end].to_string()
}

fn last_system_prompt(backend: &ScriptedBackend) -> String {
    let seen = backend.seen.lock().unwrap();
    system_text(seen.last().unwrap())
}

/// Every system message of a request (instructions, then the note).
pub(crate) fn system_text(req: &mongars_core::domain::GenerationRequest) -> String {
    req.messages
        .iter()
        .filter(|m| m.role == mongars_core::domain::ChatRole::System)
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[tokio::test]
async fn a_fact_told_in_one_session_is_recalled_in_the_next() {
    let Some((app, backend)) = memory_app().await else {
        return;
    };
    let ana = user(&app, "ana").await;
    let told = say(
        &app,
        &ana,
        "My name is Ana and I work on the Orion project",
        "monday",
    )
    .await;
    let m = wait_for(&app, &ana, |m| m.len() == 2).await;
    let mut t = texts(&m);
    t.sort();
    assert_eq!(
        t,
        [
            "The user works on the Orion project.",
            "The user's name is Ana."
        ]
    );
    assert!(m.iter().all(|x| x["source"] == told.as_str()), "{m:?}");
    assert!(m[0]["created_at"].is_string() && m[0]["expires_at"].is_null());

    let asked = say(&app, &ana, "What project do I work on?", "tuesday").await;
    let ctx = context(&app, &ana, &asked).await;
    let section = ctx["memory_section"].as_str().unwrap();
    assert!(
        section.contains("The user works on the Orion project."),
        "{ctx}"
    );
    let orion = ctx["memories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == "The user works on the Orion project.")
        .unwrap();
    assert!(orion["score"].as_f64().unwrap() > 0.4, "{ctx}");
    // The model saw it in its system prompt, and the history endpoint shows
    // when each turn leaves working memory.
    assert!(last_system_prompt(&backend).contains("Orion"));
    let (_, history) = status_json(app.get("/api/v1/conversation/history", Some(&ana)).await).await;
    assert!(history[0]["expires_at"].is_string(), "{history}");
    // Semantic search finds it first.
    let found = memories(&app, &ana, "?q=which%20project%20am%20I%20on").await;
    assert_eq!(found[0]["text"], "The user works on the Orion project.");
    assert!(found[0]["score"].as_f64().unwrap() > found[1]["score"].as_f64().unwrap());
}

#[tokio::test]
async fn five_restatements_leave_one_memory_and_edits_change_the_next_prompt() {
    let Some((app, backend)) = memory_app().await else {
        return;
    };
    let ana = user(&app, "ana").await;
    for (i, m) in [
        "I work on the Orion project.",
        "I'm working on Orion right now",
        "My project is Orion.",
        "Actually I am currently working on project Orion",
        "I work on Orion because it is fun",
    ]
    .iter()
    .enumerate()
    {
        say(&app, &ana, m, &format!("s{i}")).await;
        wait_for(&app, &ana, |m| m.len() == 1 && m[0]["mentions"] == i + 1).await;
    }
    let m = memories(&app, &ana, "").await;
    assert_eq!(m.len(), 1, "{m:?}");
    let id = m[0]["id"].as_str().unwrap().to_string();

    // A contradiction supersedes: still one visible memory, now Apollo.
    say(&app, &ana, "I now work on the Apollo project", "s9").await;
    let m = wait_for(&app, &ana, |m| {
        m.len() == 1 && m[0]["text"] != "The user works on the Orion project."
    })
    .await;
    assert_eq!(m[0]["text"], "The user works on the Apollo project.");
    let id = m[0]["id"].as_str().map(String::from).unwrap_or(id);

    // Edit through the API: the next prompt recalls the new text.
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/memories/{id}")))
        .bearer_auth(&ana)
        .json(&json!({"text": "The user works on the Gemini project."}))
        .send()
        .await
        .unwrap();
    let (status, edited) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["source"], "user");
    say(&app, &ana, "Which project am I working on?", "s10").await;
    let facts = remembered_facts(&last_system_prompt(&backend));
    assert!(
        facts.contains("Gemini") && !facts.contains("Apollo") && !facts.contains("Orion"),
        "{facts}"
    );

    // Delete: the next prompt recalls no project fact.
    let resp = app
        .client
        .delete(app.url(&format!("/api/v1/memories/{id}")))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    say(&app, &ana, "Which project am I working on?", "s11").await;
    let prompt = last_system_prompt(&backend);
    assert_eq!(remembered_facts(&prompt), "", "{prompt}");
    assert!(!prompt.contains("Gemini"), "{prompt}");
}

#[tokio::test]
async fn a_memory_whose_time_is_up_is_never_recalled_though_its_index_stays_loaded() {
    let Some((app, backend)) = memory_app_with(|s| {
        s.memory.fact_ttl_days = 1;
        s.memory.turn_ttl_days = 1;
        // No purge meanwhile: recall alone must leave them out.
        s.memory.purge_interval_secs = 86_400 * 30;
    })
    .await
    else {
        return;
    };
    let ana = user(&app, "ana").await;
    say(&app, &ana, "My name is Ana", "monday").await;
    wait_for(&app, &ana, |m| m.len() == 1).await;
    // Recall loads the user's index and finds the fact and the exchange.
    say(&app, &ana, "What is my name?", "tuesday").await;
    let prompt = last_system_prompt(&backend);
    assert!(remembered_facts(&prompt).contains("Ana"), "{prompt}");

    app.clock.advance(Duration::from_secs(86_400 + 60));
    let ana = app.login("ana", "secret-password").await;
    assert!(memories(&app, &ana, "").await.is_empty());
    say(&app, &ana, "What is my name?", "wednesday").await;
    let prompt = last_system_prompt(&backend);
    assert!(!prompt.contains("Ana"), "{prompt}");
}

#[tokio::test]
async fn one_users_memories_never_reach_another() {
    let Some((app, backend)) = memory_app().await else {
        return;
    };
    let ana = user(&app, "ana").await;
    let ben = user(&app, "ben").await;
    say(
        &app,
        &ana,
        "I work on the Orion project and I live in Lisbon",
        "a",
    )
    .await;
    say(
        &app,
        &ben,
        "I work on the Apollo project and I live in Porto",
        "b",
    )
    .await;
    wait_for(&app, &ana, |m| m.len() == 2).await;
    let bens = wait_for(&app, &ben, |m| m.len() == 2).await;

    say(&app, &ana, "Where do I live and what do I work on?", "a2").await;
    let prompt = last_system_prompt(&backend);
    assert!(
        prompt.contains("Orion") && prompt.contains("Lisbon"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("Apollo") && !prompt.contains("Porto"),
        "{prompt}"
    );

    let found = texts(&memories(&app, &ana, "?q=Apollo%20Porto").await);
    assert!(
        found
            .iter()
            .all(|t| !t.contains("Apollo") && !t.contains("Porto")),
        "{found:?}"
    );

    // Ben's ids are unknown to Ana.
    let bens_id = bens[0]["id"].as_str().unwrap();
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/memories/{bens_id}")))
        .bearer_auth(&ana)
        .json(&json!({"text": "hijacked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = app
        .client
        .delete(app.url(&format!("/api/v1/memories/{bens_id}")))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(memories(&app, &ben, "").await.len(), 2);
}

#[tokio::test]
async fn memories_api_validates_and_forget_me_removes_everything() {
    let Some((app, _)) = memory_app().await else {
        return;
    };
    let ana = user(&app, "ana").await;
    let (status, created) = status_json(
        app.post_json(
            "/api/v1/memories",
            json!({"text": "I am allergic to peanuts."}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["source"], "user");
    // The same again merges into it.
    let (status, again) = status_json(
        app.post_json(
            "/api/v1/memories",
            json!({"text": "I am allergic to peanuts"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["id"], created["id"]);
    for bad in [
        json!({"text": "   "}),
        json!({"text": "x".repeat(1001)}),
        json!({"nope": 1}),
    ] {
        let (status, body) =
            status_json(app.post_json("/api/v1/memories", bad, Some(&ana)).await).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{body}"
        );
        assert!(body["code"].is_string());
    }
    let (status, _) = status_json(app.get("/api/v1/memories?limit=0", Some(&ana)).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.get("/api/v1/memories", None).await.status(),
        StatusCode::UNAUTHORIZED
    );

    say(&app, &ana, "My name is Ana!", "s").await;
    // The style profile is stored with the reply: it counts the message
    // as soon as the reply is answered.
    let (_, profile) = status_json(app.get("/api/v1/profile", Some(&ana)).await).await;
    assert_eq!(profile["messages"], 1, "{profile}");
    wait_for(&app, &ana, |m| m.len() == 2).await;

    let resp = app
        .client
        .delete(app.url("/api/v1/user/data"))
        .bearer_auth(&ana)
        .send()
        .await
        .unwrap();
    let (status, report) = status_json(resp).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (
            report["turns"].as_u64(),
            report["memories"].as_u64(),
            report["profile"].as_bool()
        ),
        (Some(1), Some(3), Some(true))
    );
    assert!(memories(&app, &ana, "").await.is_empty());
    let (_, history) = status_json(app.get("/api/v1/conversation/history", Some(&ana)).await).await;
    assert_eq!(history, json!([]));
    let (_, profile) = status_json(app.get("/api/v1/profile", Some(&ana)).await).await;
    assert_eq!(profile["messages"], 0);
    // The account stays usable.
    say(&app, &ana, "Hello again", "s").await;
}
