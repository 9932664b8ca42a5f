//! Remote embedders against fake Ollama and OpenAI-compatible servers.

use axum::Json;
use axum::routing::post;
use mongars_core::ports::{EmbedError, Embedder};
use mongars_embed::{RemoteEmbedder, RemoteEmbedderConfig, RemoteKind};
use serde_json::{Value, json};
use std::time::Duration;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn config(kind: RemoteKind, url: String, dimensions: usize) -> RemoteEmbedderConfig {
    RemoteEmbedderConfig {
        kind,
        url,
        model: "nomic-embed-text".into(),
        dimensions,
        api_key: Some("sk-test".into()),
        timeout: Duration::from_secs(2),
        tls: mongars_net::Tls::public_roots(),
    }
}

#[tokio::test]
async fn ollama_and_openai_answers_are_checked_and_normalised() {
    let ollama = serve(axum::Router::new().route(
        "/api/embed",
        post(|Json(b): Json<Value>| async move {
            let n = b["input"].as_array().unwrap().len();
            Json(json!({"embeddings": vec![vec![3.0, 4.0]; n], "prompt_eval_count": 9}))
        }),
    ))
    .await;
    let e = RemoteEmbedder::new(config(RemoteKind::Ollama, ollama, 2)).unwrap();
    let out = e.embed(&["a".into(), "b".into()]).await.unwrap();
    assert_eq!(out.vectors, vec![vec![0.6, 0.8]; 2]);
    assert_eq!(out.tokens, 9);

    let openai = serve(axum::Router::new().route(
        "/v1/embeddings",
        post(|headers: axum::http::HeaderMap| async move {
            assert_eq!(headers["authorization"], "Bearer sk-test");
            // Out of order on purpose: the index decides.
            Json(json!({"data": [
                {"index": 1, "embedding": [0.0, 2.0]},
                {"index": 0, "embedding": [2.0, 0.0]}
            ], "usage": {"prompt_tokens": 4}}))
        }),
    ))
    .await;
    let e = RemoteEmbedder::new(config(RemoteKind::OpenAi, openai.clone(), 2)).unwrap();
    let out = e.embed(&["x".into(), "y".into()]).await.unwrap();
    assert_eq!(out.vectors, vec![vec![1.0, 0.0], vec![0.0, 1.0]]);

    // A server whose vectors have the wrong length is refused.
    let e = RemoteEmbedder::new(config(RemoteKind::OpenAi, openai, 3)).unwrap();
    assert!(matches!(
        e.embed(&["x".into(), "y".into()]).await,
        Err(EmbedError::Failed(_))
    ));
    // Nobody listening: unavailable, and the key is not in the message.
    let e =
        RemoteEmbedder::new(config(RemoteKind::Ollama, "http://127.0.0.1:9".into(), 2)).unwrap();
    match e.embed(&["x".into()]).await {
        Err(EmbedError::Unavailable(m)) => assert!(!m.contains("sk-test"), "{m}"),
        other => panic!("{other:?}"),
    }
}
