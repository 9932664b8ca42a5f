//! Learning from users over HTTP: consent in the profile, ratings and
//! corrections, examples, the review queue for samples with personal data,
//! dataset versions and their export, and the adapter registry's refusals.

use crate::common::{TestApp, databases, status_json, use_db};
use crate::edge::admin_and_user;
use reqwest::StatusCode as S;
use serde_json::{Value, json};

async fn patch(app: &TestApp, path: &str, body: Value, token: &str) -> (S, Value) {
    status_json(
        app.client
            .patch(app.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn post(app: &TestApp, path: &str, body: Value, token: &str) -> (S, Value) {
    status_json(app.post_json(path, body, Some(token)).await).await
}

async fn chat(app: &TestApp, token: &str, message: &str) -> String {
    let (status, body) = post(
        app,
        "/api/v1/conversation/chat",
        json!({ "message": message }),
        token,
    )
    .await;
    assert_eq!(status, S::OK, "{body}");
    body["speech_turn"]["turn_id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consented_feedback_becomes_reviewed_dataset_versions() {
    for db in databases().await {
        let app = TestApp::spawn_with(|s| use_db(s, &db)).await;
        let (admin, ana) = admin_and_user(&app).await;

        // Consent is off until the user turns it on.
        let (_, profile) = status_json(app.get("/api/v1/profile", Some(&ana)).await).await;
        assert_eq!(profile["training_consent"], false);
        assert!(profile["style_instruction"].is_string(), "{profile}");
        let t1 = chat(&app, &ana, "Tell me something nice").await;
        let (status, body) = post(
            &app,
            &format!("/api/v1/conversation/turns/{t1}/feedback"),
            json!({"rating": "up"}),
            &ana,
        )
        .await;
        assert_eq!(status, S::OK, "{body}");
        assert_eq!(body["sample"], Value::Null, "no consent, no sample");
        let (status, body) = post(
            &app,
            "/api/v1/training/examples",
            json!({"prompt": "hi", "response": "hello"}),
            &ana,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (S::CONFLICT, Some("training.consent_required"))
        );

        let (status, profile) = patch(
            &app,
            "/api/v1/profile",
            json!({"training_consent": true}),
            &ana,
        )
        .await;
        assert_eq!(status, S::OK, "{profile}");
        assert_eq!(profile["training_consent"], true);
        let (status, _) = patch(
            &app,
            "/api/v1/profile",
            json!({"training_consent": "yes"}),
            &ana,
        )
        .await;
        assert_eq!(status, S::UNPROCESSABLE_ENTITY);

        // A thumbs-up keeps the reply as an example; a correction with an
        // e-mail address is held with a placeholder in its text.
        let (_, up) = post(
            &app,
            &format!("/api/v1/conversation/turns/{t1}/feedback"),
            json!({"rating": "up"}),
            &ana,
        )
        .await;
        assert_eq!(up["sample"]["status"], "ready", "{up}");
        assert_eq!(up["sample"]["prompt"], "Tell me something nice");
        let t2 = chat(&app, &ana, "How do I reach support?").await;
        let (_, held) = post(
            &app,
            &format!("/api/v1/conversation/turns/{t2}/feedback"),
            json!({"rating": "down", "correction": "Write to help@example.com today."}),
            &ana,
        )
        .await;
        assert_eq!(held["sample"]["status"], "held", "{held}");
        assert_eq!(held["sample"]["response"], "Write to [EMAIL] today.");
        assert_eq!(held["sample"]["pii"], json!(["email"]));
        let (status, body) = post(
            &app,
            "/api/v1/conversation/turns/nope/feedback",
            json!({"rating": "up"}),
            &ana,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (S::NOT_FOUND, Some("resource.not_found"))
        );
        let (status, _) = post(
            &app,
            &format!("/api/v1/conversation/turns/{t2}/feedback"),
            json!({"rating": "sideways"}),
            &ana,
        )
        .await;
        assert_eq!(status, S::UNPROCESSABLE_ENTITY);

        // Operators review what was held.
        let (status, _) =
            status_json(app.get("/api/v1/admin/training/review", Some(&ana)).await).await;
        assert_eq!(status, S::FORBIDDEN);
        let (status, queue) =
            status_json(app.get("/api/v1/admin/training/review", Some(&admin)).await).await;
        assert_eq!(status, S::OK, "{queue}");
        assert_eq!(
            (queue["held"].as_u64(), queue["ready"].as_u64()),
            (Some(1), Some(1))
        );
        let held_id = queue["items"][0]["id"].as_str().unwrap().to_string();
        let (status, reviewed) = post(
            &app,
            &format!("/api/v1/admin/training/review/{held_id}"),
            json!({"action": "approve"}),
            &admin,
        )
        .await;
        assert_eq!(
            (status, reviewed["status"].as_str()),
            (S::OK, Some("ready"))
        );

        let (status, d) = post(&app, "/api/v1/admin/training/datasets", json!({}), &admin).await;
        assert_eq!(status, S::CREATED, "{d}");
        assert_eq!(
            (d["version"].as_i64(), d["samples"].as_i64()),
            (Some(1), Some(2))
        );
        let id = d["id"].as_str().unwrap();
        let export = app
            .get(
                &format!("/api/v1/admin/training/datasets/{id}/export"),
                Some(&admin),
            )
            .await;
        assert_eq!(export.status(), S::OK);
        assert_eq!(
            export.headers()["content-type"].to_str().unwrap(),
            "application/x-ndjson"
        );
        let text = export.text().await.unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines
                .iter()
                .all(|l| !l["response"].as_str().unwrap().contains('@'))
        );
        assert!(text.contains("[EMAIL]"));
        let (_, list) = status_json(
            app.get("/api/v1/admin/training/datasets", Some(&admin))
                .await,
        )
        .await;
        assert_eq!(list["datasets"][0]["content_hash"], d["content_hash"]);

        // The registry refuses what does not exist and what is not approved.
        let (status, _) = post(
            &app,
            "/api/v1/admin/adapters/nope/activate",
            json!({}),
            &admin,
        )
        .await;
        assert_eq!(status, S::NOT_FOUND);
        let (status, body) = post(&app, "/api/v1/admin/adapters/rollback", json!({}), &admin).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (S::CONFLICT, Some("adapter.nothing_to_roll_back"))
        );
        let (_, adapters) =
            status_json(app.get("/api/v1/admin/adapters", Some(&admin)).await).await;
        assert_eq!(adapters["adapters"], json!([]));

        // Forgetting the user takes their samples out of the dataset too.
        let (status, _) = status_json(
            app.client
                .delete(app.url("/api/v1/user/data"))
                .bearer_auth(&ana)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, S::OK);
        let text = app
            .get(
                &format!("/api/v1/admin/training/datasets/{id}/export"),
                Some(&admin),
            )
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(text, "", "the user's items are gone");
        app.shutdown().await;
    }
}
