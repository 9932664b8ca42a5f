//! A training run in the server on the real model, as an operator starts
//! it: queued over the API, trained only once the node has been idle, paused
//! at its next step when a chat arrives, resumed at the next idle spell and
//! finished with its figures and energy estimate; a passing adapter is a
//! candidate in the registry.

use crate::common::{TestApp, eventually, status_json};
use crate::edge::admin_and_user;
use mongars_train::corpus::style_corpus;
use reqwest::StatusCode as S;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(300);

async fn run_state(app: &TestApp, admin: &str, id: &str) -> Value {
    let (status, run) = status_json(
        app.get(&format!("/api/v1/admin/training/runs/{id}"), Some(admin))
            .await,
    )
    .await;
    assert_eq!(status, S::OK, "{run}");
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_waits_for_idle_pauses_for_a_chat_and_resumes() {
    let Some(app) = TestApp::spawn_real(|s| {
        s.llm.role_mut(false).max_tokens = 8;
        let t = &mut s.training;
        t.idle_minutes = 1.0;
        t.idle_cpu_percent = 100.0;
        t.layers = 2;
        t.accumulation = 1;
        t.eval_every = 10;
        t.steps = 40;
    })
    .await
    else {
        return;
    };
    let (admin, ana) = admin_and_user(&app).await;
    let (status, _) = status_json(
        app.client
            .patch(app.url("/api/v1/profile"))
            .bearer_auth(&ana)
            .json(&json!({"training_consent": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, S::OK);
    for (prompt, response) in style_corpus(3, 12) {
        let (status, body) = status_json(
            app.post_json(
                "/api/v1/training/examples",
                json!({"prompt": prompt, "response": response}),
                Some(&ana),
            )
            .await,
        )
        .await;
        assert_eq!(status, S::CREATED, "{body}");
    }
    let (status, dataset) = status_json(
        app.post_json("/api/v1/admin/training/datasets", json!({}), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(status, S::CREATED, "{dataset}");
    let (status, run) = status_json(
        app.post_json(
            "/api/v1/admin/training/runs",
            json!({"steps": 40}),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(status, S::ACCEPTED, "{run}");
    assert_eq!(run["status"], "queued");
    assert_eq!(run["dataset_id"], dataset["id"]);
    let id = run["id"].as_str().unwrap().to_string();
    let (status, again) = status_json(
        app.post_json("/api/v1/admin/training/runs", json!({}), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (S::CONFLICT, Some("training.run_active"))
    );

    // The node has just started: not idle until a quiet minute has passed.
    app.clock.advance(Duration::from_secs(61));
    eventually(WAIT, "the run starts once the node is idle", || async {
        run_state(&app, &admin, &id).await["steps_done"]
            .as_i64()
            .unwrap()
            >= 2
    })
    .await;

    // A chat arrives: it is answered, and the run pauses at its next step.
    let (status, reply) = status_json(
        app.post_json(
            "/api/v1/conversation/chat",
            json!({"message": "Hello there"}),
            Some(&ana),
        )
        .await,
    )
    .await;
    assert_eq!(status, S::OK, "{reply}");
    eventually(WAIT, "the run pauses", || async {
        run_state(&app, &admin, &id).await["status"] == "paused"
    })
    .await;
    let paused = run_state(&app, &admin, &id).await;
    assert_eq!(paused["pauses"], 1);
    let at = paused["steps_done"].as_i64().unwrap();
    assert!(at < 40, "paused before its end: {paused}");

    // The next quiet minute resumes it from its checkpoint, to the end.
    app.clock.advance(Duration::from_secs(61));
    eventually(WAIT, "the run finishes", || async {
        run_state(&app, &admin, &id).await["status"] == "succeeded"
    })
    .await;
    let done = run_state(&app, &admin, &id).await;
    assert_eq!(done["steps_done"], 40, "{done}");
    assert_eq!(done["pauses"], 1);
    assert!(done["cpu_seconds"].as_f64().unwrap() > 0.0, "{done}");
    assert!(done["energy_wh"].as_f64().unwrap() > 0.0, "{done}");
    let f = &done["figures"];
    let (before, after) = (
        f["held_out_perplexity_before"].as_f64().unwrap(),
        f["held_out_perplexity_after"].as_f64().unwrap(),
    );
    assert!(after < before, "{f}");
    let (_, adapters) = status_json(app.get("/api/v1/admin/adapters", Some(&admin)).await).await;
    match done["adapter_id"].as_str() {
        Some(adapter) => {
            assert_eq!(adapters["adapters"][0]["id"], adapter);
            assert_eq!(adapters["adapters"][0]["status"], "candidate");
            assert_eq!(adapters["adapters"][0]["run_id"], id.as_str());
        }
        None => assert_eq!(f["candidate"], false, "{f}"),
    }
    println!(
        "run: {} steps, paused at {at}, held-out {before:.1} -> {after:.1}, general {:.2} -> {:.2}, \
         {:.0} tokens/s, {:.1} CPU s, {:.4} Wh",
        done["steps_done"],
        f["general_perplexity_before"].as_f64().unwrap(),
        f["general_perplexity_after"].as_f64().unwrap(),
        f["tokens_per_second"].as_f64().unwrap(),
        done["cpu_seconds"].as_f64().unwrap(),
        done["energy_wh"].as_f64().unwrap()
    );
    app.shutdown().await;
}
