//! The OpenAI-compatible surface on a scripted backend: shapes and errors.

use crate::common::{TestApp, status_json};
use mongars_core::domain::Role;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

async fn app() -> (TestApp, String, Arc<ScriptedBackend>) {
    let backend = Arc::new(ScriptedBackend::new(Script::Reply(
        "Hi there friend".into(),
    )));
    let app = TestApp::spawn_scripted(|_| {}, backend.clone()).await;
    app.add_user("dev", "dev-password", Role::User).await;
    let token = app.login("dev", "dev-password").await;
    (app, token, backend)
}

#[tokio::test]
async fn completion_has_the_openai_shape() {
    let (app, token, backend) = app().await;
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be nice."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]}
        ],
        "temperature": 0,
        "max_tokens": 2,
        "stop": "END"
    });
    let (status, resp) = status_json(
        app.post_json("/v1/chat/completions", body, Some(&token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["object"], "chat.completion");
    assert!(resp["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(resp["model"], "scripted");
    assert_eq!(
        resp["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hi there"})
    );
    assert_eq!(resp["choices"][0]["finish_reason"], "length");
    let usage = &resp["usage"];
    assert_eq!(usage["completion_tokens"], 2);
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + 2)
    );
    let seen = backend.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.sampling.temperature, 0.0);
    assert_eq!(seen.sampling.stop, vec!["END".to_string()]);
    assert_eq!(seen.messages[1].content, "Hello");
    assert!(seen.account.is_some_and(|id| id > 0), "{:?}", seen.account);
}

#[tokio::test]
async fn streamed_completion_ends_with_done() {
    let (app, token, _) = app().await;
    let body = json!({
        "model": "any", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Hello"}]
    });
    let resp = app
        .post_json("/v1/chat/completions", body, Some(&token))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let datas: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(*datas.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = datas[..datas.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hi there friend");
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"].get(0)?["finish_reason"].as_str());
    assert_eq!(finish, Some("stop"));
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
}

#[tokio::test]
async fn models_lists_the_served_model() {
    let (app, token, _) = app().await;
    let (status, body) = status_json(app.get("/v1/models", Some(&token)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["id"], "scripted");
    assert_eq!(
        app.get("/v1/models", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_requests_get_openai_style_errors() {
    let (app, token, _) = app().await;
    let cases = [
        json!({"messages": []}),
        json!({"messages": [{"role": "wizard", "content": "x"}]}),
        json!({"messages": [{"role": "user", "content": "x"}], "temperature": 3}),
        json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
        json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}),
        json!({"messages": [{"role": "user", "content": "x"}], "stop": ["a", "b", "c", "d", "e"]}),
    ];
    for body in cases {
        let (status, err) = status_json(
            app.post_json("/v1/chat/completions", body.clone(), Some(&token))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
        assert!(err["error"]["message"].is_string());
        assert_eq!(err["code"], "request.validation");
    }
    let resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&json!({"messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    let (status, err) = status_json(resp).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(err["error"]["type"], "authentication_error");
}
