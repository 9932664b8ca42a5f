//! An adapter activated and rolled back on the real model while users keep
//! chatting: every request answers, the engine serves the adapter between
//! the two, and health and the model listing say which one it is.

use crate::common::{TestApp, eventually, status_json};
use crate::edge::admin_and_user;
use mongars_core::domain::Role;
use mongars_core::training::registry::NewAdapter;
use mongars_train::adapter::{AdapterInfo, write_gguf};
use mongars_train::lora::{Lora, LoraOptions, Target};
use mongars_train::model::gguf_config;
use mongars_train::rng::Rng;
use reqwest::StatusCode as S;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A LoRA adapter for the model at `model` whose B matrices are random (an
/// untrained one would change nothing).
fn adapter_file(model: &std::path::Path, out: &std::path::Path) {
    let config = gguf_config(model).unwrap();
    let n = config.layers;
    let lora = Lora::new(
        &config,
        LoraOptions {
            rank: 4,
            alpha: 8.0,
            dropout: 0.0,
            targets: vec![Target::Q, Target::V],
            layers: (n - 4..n).collect(),
        },
        5,
    )
    .unwrap();
    let mut rng = Rng::new(11);
    for (_, _, pair) in lora.pairs() {
        let v: Vec<f32> = (0..pair.b.elem_count())
            .map(|_| rng.symmetric(0.05))
            .collect();
        let t = candle_core::Tensor::from_vec(v, pair.b.shape(), pair.b.device()).unwrap();
        pair.b.set(&t).unwrap();
    }
    let info = AdapterInfo {
        architecture: "llama".into(),
        name: "switch-test".into(),
    };
    write_gguf(&lora, &info, out).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activation_and_rollback_under_chat_load_fail_no_request() {
    let Some(app) = TestApp::spawn_real(|s| s.llm.role_mut(false).max_tokens = 12).await else {
        return;
    };
    let (admin, _) = admin_and_user(&app).await;
    // An adapter registered as a training run would register it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("adapter.gguf");
    adapter_file(&app.settings.llm.embedded.model_path, &file);
    let db = mongars::wiring::database::open_database(&app.settings)
        .await
        .unwrap();
    let clock = mongars::wiring::system_clock();
    let state = mongars::wiring::training::training_state(&app.settings, &db, None, &clock);
    let adapter = state
        .adapters
        .register(NewAdapter {
            source: file,
            base_model_sha256: "test".into(),
            dataset_hash: "test".into(),
            run_id: None,
            metrics: json!({}),
        })
        .await
        .unwrap();
    let id = adapter.id.clone();
    let post = |path: String| {
        let (client, url, token) = (app.client.clone(), app.url(&path), admin.clone());
        async move { status_json(client.post(url).bearer_auth(token).send().await.unwrap()).await }
    };
    let (status, body) = post(format!("/api/v1/admin/adapters/{id}/activate")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (S::CONFLICT, Some("adapter.not_approved"))
    );

    // Three users chat without pause from here on.
    let mut users = Vec::new();
    for i in 0..3 {
        let name = format!("chatter{i}");
        app.add_user(&name, "secret-password", Role::User).await;
        users.push(app.login(&name, "secret-password").await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = users
        .into_iter()
        .map(|token| {
            let (client, url) = (app.client.clone(), app.url("/api/v1/conversation/chat"));
            let (stop, answered) = (stop.clone(), answered.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let resp = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"message": "Say something about the sea."}))
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    if status != S::OK {
                        failures.push((status, resp.text().await.unwrap_or_default()));
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
                failures
            })
        })
        .collect();
    let progress = |more: usize| {
        let answered = answered.clone();
        let target = answered.load(Ordering::SeqCst) + more;
        async move {
            eventually(
                Duration::from_secs(120),
                "chats keep being answered",
                || {
                    let answered = answered.clone();
                    async move { answered.load(Ordering::SeqCst) >= target }
                },
            )
            .await;
        }
    };
    progress(3).await;
    let (status, body) = post(format!("/api/v1/admin/adapters/{id}/approve")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (S::OK, Some("approved")),
        "{body}"
    );
    let mut switches = Vec::new();
    for round in 0..2 {
        let (status, body) = post(format!("/api/v1/admin/adapters/{id}/activate")).await;
        assert_eq!(status, S::OK, "{body}");
        assert_eq!(body["active"]["id"], id.as_str());
        switches.push(body["switch_ms"].as_u64().unwrap());
        let (_, health) = status_json(app.get("/llm/health", None).await).await;
        assert!(health.to_string().contains(&id), "round {round}: {health}");
        let (_, models) = status_json(app.get("/api/v1/models", Some(&admin)).await).await;
        assert_eq!(models["adapter"], id.as_str());
        progress(3).await;
        let (status, body) = post("/api/v1/admin/adapters/rollback".into()).await;
        assert_eq!(status, S::OK, "{body}");
        assert_eq!(body["active"], Value::Null);
        switches.push(body["switch_ms"].as_u64().unwrap());
        let (_, models) = status_json(app.get("/api/v1/models", Some(&admin)).await).await;
        assert_eq!(models["adapter"], Value::Null);
        progress(3).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for l in loops {
        failures.extend(l.await.unwrap());
    }
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let (_, list) = status_json(app.get("/api/v1/admin/adapters", Some(&admin)).await).await;
    assert_eq!(list["adapters"][0]["status"], "retired");
    println!(
        "{} chats answered across 4 switches; switch times {switches:?} ms",
        answered.load(Ordering::SeqCst)
    );
    app.shutdown().await;
}
