//! Research, embeddings and the helper endpoints through HTTP, against fake
//! SearxNG, web and document servers on loopback that record every hit.

use crate::common::{TestApp, status_json};
use crate::conversation::user;
use crate::memory::{memory_app, say};
use axum::Router;
use axum::extract::{Json, Query, State};
use axum::routing::{get, post};
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Hits = Arc<Mutex<Vec<String>>>;

/// One fake for the whole outside world: `/search` (SearxNG JSON),
/// `/robots.txt`, `/pages/*` (allowed), `/private/*` (disallowed) and
/// `/docs/search` (document retrieval).
async fn outside_world() -> (String, Hits) {
    let hits: Hits = Arc::default();
    async fn searx(
        State((hits, base)): State<(Hits, String)>,
        Query(q): Query<HashMap<String, String>>,
    ) -> Json<Value> {
        hits.lock().unwrap().push(format!(
            "search {}",
            q.get("q").cloned().unwrap_or_default()
        ));
        Json(json!({"results": [
            {"url": format!("{base}/pages/kuiper"), "title": "Kuiper belt", "content": "A short snippet."},
            {"url": format!("{base}/private/kuiper"), "title": "Private notes", "content": "Snippet of a private page."}
        ]}))
    }
    async fn page(
        State((hits, _)): State<(Hits, String)>,
        uri: axum::http::Uri,
    ) -> axum::response::Html<String> {
        hits.lock().unwrap().push(format!("GET {}", uri.path()));
        axum::response::Html(
            "<html><head><title>Kuiper belt</title></head><body><nav>menu</nav>\
             <p>Cookies are used here.</p><p>The Kuiper belt is a disc of icy bodies beyond Neptune.</p></body></html>"
                .into(),
        )
    }
    async fn robots(State((hits, _)): State<(Hits, String)>) -> &'static str {
        hits.lock().unwrap().push("GET /robots.txt".into());
        "User-agent: *\nDisallow: /private/\n"
    }
    async fn docs(State((hits, _)): State<(Hits, String)>, Json(body): Json<Value>) -> Json<Value> {
        hits.lock()
            .unwrap()
            .push(format!("docs {}", body["query"].as_str().unwrap_or("")));
        Json(json!({"results": [{
            "repository": body["repositories"][0].as_str().unwrap_or("orion"),
            "file_path": "src/scheduler.rs",
            "summary": "The scheduler assigns passes to ground stations.",
            "score": 0.9,
            "url": "http://git.example/orion/src/scheduler.rs"
        }]}))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/search", get(searx))
        .route("/robots.txt", get(robots))
        .route("/pages/{p}", get(page))
        .route("/private/{p}", get(page))
        .route("/docs/search", post(docs))
        .with_state((hits.clone(), base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

async fn app_with_research(base: &str, enabled: bool) -> (TestApp, Arc<ScriptedBackend>) {
    let backend = Arc::new(ScriptedBackend::new(Script::Reply(
        "Here is what I found.".into(),
    )));
    let (searx, docs) = (base.to_string(), format!("{base}/docs"));
    let app = TestApp::spawn_scripted(
        move |s| {
            s.research.enabled = enabled;
            s.research.searxng_url = searx;
            s.research.documents_url = docs;
        },
        backend.clone(),
    )
    .await;
    (app, backend)
}

#[tokio::test]
async fn with_research_off_no_connection_is_attempted() {
    let (base, hits) = outside_world().await;
    let (app, backend) = app_with_research(&base, false).await;
    let ana = user(&app, "ana").await;
    say(&app, &ana, "What is the Kuiper belt?", "s").await;
    let (status, rag) = status_json(
        app.post_json(
            "/api/v1/review/rag-context",
            json!({"query": "How does the scheduler work?"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        rag,
        json!({"enabled": false, "focus_areas": [], "references": []})
    );
    assert!(
        hits.lock().unwrap().is_empty(),
        "{:?}",
        hits.lock().unwrap()
    );
    let prompt = crate::memory::system_text(&backend.seen.lock().unwrap()[0]);
    assert!(!prompt.contains("Sources found"), "{prompt}");
}

#[tokio::test]
async fn with_research_on_cited_sources_reach_the_prompt_and_robots_are_obeyed() {
    let (base, hits) = outside_world().await;
    let (app, backend) = app_with_research(&base, true).await;
    let ana = user(&app, "ana").await;
    let turn = say(&app, &ana, "What is the Kuiper belt?", "s").await;
    let prompt = crate::memory::system_text(&backend.seen.lock().unwrap()[0]);
    assert!(prompt.contains(&format!("{base}/pages/kuiper")), "{prompt}");
    assert!(
        prompt.contains("The Kuiper belt is a disc of icy bodies beyond Neptune."),
        "{prompt}"
    );
    // The disallowed page is cited from its snippet, never fetched.
    assert!(prompt.contains("Snippet of a private page."), "{prompt}");
    let seen = hits.lock().unwrap().clone();
    assert!(
        seen.contains(&"search What is the Kuiper belt".to_string()),
        "{seen:?}"
    );
    assert!(seen.contains(&"GET /pages/kuiper".to_string()), "{seen:?}");
    assert!(
        !seen.iter().any(|h| h.starts_with("GET /private")),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|h| *h == "GET /robots.txt").count(),
        1,
        "{seen:?}"
    );
    let (_, ctx) = status_json(
        app.get(
            &format!("/api/v1/conversation/turns/{turn}/context"),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(ctx["gap"], true);
    assert!(ctx["research"][0]["provider"].as_str().is_some(), "{ctx}");

    // A personal question is memory's job, not research's.
    let before = hits.lock().unwrap().len();
    say(&app, &ana, "What is my favourite colour?", "s").await;
    assert_eq!(hits.lock().unwrap().len(), before);

    let (status, rag) = status_json(
        app.post_json(
            "/api/v1/review/rag-context",
            json!({"query": "How does the scheduler assign passes?", "repositories": ["orion"], "max_results": 3}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rag}");
    assert_eq!(rag["enabled"], true);
    assert_eq!(rag["references"][0]["file_path"], "src/scheduler.rs");
    assert_eq!(rag["references"][0]["repository"], "orion");
    assert!(
        rag["focus_areas"]
            .as_array()
            .unwrap()
            .contains(&json!("scheduler")),
        "{rag}"
    );
    let (status, _) = status_json(
        app.post_json(
            "/api/v1/review/rag-context",
            json!({"query": ""}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn embeddings_endpoint_speaks_openai_and_matches_the_reference() {
    let Some((app, _)) = memory_app().await else {
        return;
    };
    let ana = user(&app, "ana").await;
    let (status, body) = status_json(
        app.post_json(
            "/v1/embeddings",
            json!({"model": "all-MiniLM-L6-v2", "input": "This is an example sentence"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["object"], "list");
    let v: Vec<f64> = serde_json::from_value(body["data"][0]["embedding"].clone()).unwrap();
    assert_eq!(v.len(), 384);
    for (got, want) in v.iter().zip([0.06766, 0.06350, 0.04871, 0.07930, 0.03745]) {
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }
    assert_eq!(body["usage"]["prompt_tokens"], 7);
    let (_, b64) = status_json(
        app.post_json(
            "/v1/embeddings",
            json!({"input": ["a", "b"], "encoding_format": "base64"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(b64["data"][1]["index"], 1);
    assert_eq!(b64["data"][0]["embedding"].as_str().unwrap().len(), 2048);
    for bad in [
        json!({"input": []}),
        json!({"input": [1, 2]}),
        json!({"input": ""}),
        json!({"input": "x", "dimensions": 12}),
    ] {
        let (status, body) =
            status_json(app.post_json("/v1/embeddings", bad, Some(&ana)).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    assert_eq!(
        app.post_json("/v1/embeddings", json!({"input": "x"}), None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn suggestions_rank_actions_by_meaning() {
    let Some((app, _)) = memory_app().await else {
        return;
    };
    let ana = user(&app, "ana").await;
    let (status, body) = status_json(
        app.post_json(
            "/api/v1/ui/suggestions",
            json!({"prompt": "This Python function throws a TypeError, can you fix the bug?"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["actions"][0], "code", "{body}");
    assert_eq!(body["model"], "all-MiniLM-L6-v2");
    let s = &body["scores"];
    assert!(s["code"].as_f64().unwrap() > s["translate"].as_f64().unwrap());
    let (_, custom) = status_json(
        app.post_json("/api/v1/ui/suggestions", json!({"prompt": "Translate this into German please", "actions": ["summarize", "translate"]}), Some(&ana))
            .await,
    )
    .await;
    assert_eq!(custom["actions"], json!(["translate", "summarize"]));
    let (status, _) = status_json(
        app.post_json("/api/v1/ui/suggestions", json!({"prompt": ""}), Some(&ana))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}
