//! Remote backends, failover, circuit breakers and metrics, against fake
//! Ollama, OpenAI and Ray Serve servers.

use crate::common::fake::{Fake, Mode};
use crate::common::{TestApp, status_json};
use mongars_config::{RemoteKind, Secret, Settings};
use mongars_core::domain::Role;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHAT: &str = "/api/v1/conversation/chat";

/// Point backend `name` at `url` and make both roles use `chain`; quick
/// timeouts and breaker; no rate limit or cache in the way.
pub fn configure(s: &mut Settings, name: &str, url: &str, chain: &[&str]) {
    let b = s.llm.backends.get_mut(name).expect("backend");
    b.url = url.to_string();
    if b.kind == RemoteKind::Openai {
        b.model = "fake-model".into();
    }
    for coding in [false, true] {
        s.llm.role_mut(coding).backends = chain.iter().map(|c| c.to_string()).collect();
        s.llm.role_mut(coding).max_tokens = 64;
    }
    let r = &mut s.llm.resilience;
    r.connect_timeout_ms = 500;
    r.first_token_timeout_ms = 400;
    r.total_timeout_ms = 5000;
    r.retry_base_ms = 10;
    r.retry_max_ms = 50;
    r.breaker_failures = 3;
    r.breaker_cooldown_ms = 30_000;
    s.llm.cache.enabled = false;
    s.conversation.rate_limit_burst = 10_000;
    s.conversation.rate_limit_per_minute = 100_000;
}

fn fallback() -> Arc<ScriptedBackend> {
    Arc::new(ScriptedBackend::new(Script::Reply(
        "from the fallback".into(),
    )))
}

async fn user_and_admin(app: &TestApp) -> (String, String) {
    app.add_user("ana", "secret-password", Role::User).await;
    app.add_user("root", "secret-password", Role::Admin).await;
    (
        app.login("ana", "secret-password").await,
        app.login("root", "secret-password").await,
    )
}

async fn chat(app: &TestApp, token: &str, message: &str) -> (StatusCode, Value) {
    status_json(
        app.post_json(CHAT, json!({"message": message}), Some(token))
            .await,
    )
    .await
}

async fn metrics(app: &TestApp, admin: &str) -> String {
    let resp = app.get("/metrics", Some(admin)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in metrics"))
}

#[tokio::test]
async fn ray_scaling_is_waited_out_and_counted() {
    let a = Fake::start(Mode::Ok("Hello from ray".into())).await;
    a.then(&[Mode::Status(503, Some(1))]);
    // The second endpoint is down: nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let urls = format!("{}/generate, {dead}/generate", a.url);
    let app = TestApp::spawn_with(|s| {
        configure(s, "ray", &urls, &["ray"]);
        s.llm.resilience.first_token_timeout_ms = 10_000;
    })
    .await;
    let (user, admin) = user_and_admin(&app).await;
    let (status, body) = chat(&app, &user, "hello").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], "Hello from ray");
    let hits = a.chat_hits();
    assert_eq!(hits.len(), 2, "503 once, then the answer");
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After not honoured: {gap:?}"
    );
    assert_eq!(hits[0].body["max_new_tokens"], 64);
    assert!(
        hits[0].body["prompt"]
            .as_str()
            .unwrap()
            .ends_with("assistant:")
    );
    let m = metrics(&app, &admin).await;
    assert_eq!(sample(&m, "mongars_llm_ray_scaling_events_total"), 1.0);
    assert!(sample(&m, "mongars_llm_ray_requests_total") >= 3.0, "{m}");
    assert!(sample(&m, "mongars_llm_ray_failures_total{reason=\"transport\"}") >= 1.0);
}

#[tokio::test]
async fn ray_streams_ndjson_when_asked() {
    let a = Fake::start(Mode::Ok("streamed ray reply".into())).await;
    let url = format!("{}/generate", a.url);
    let app = TestApp::spawn_with(|s| {
        configure(s, "ray", &url, &["ray"]);
        s.llm.backends.get_mut("ray").unwrap().stream = true;
    })
    .await;
    let (user, _) = user_and_admin(&app).await;
    let (status, body) = chat(&app, &user, "hi").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], "streamed ray reply");
    assert_eq!(a.chat_hits()[0].body["stream"], true);
}

#[tokio::test]
async fn dead_primary_fails_over_opens_its_breaker_and_one_probe_closes_it() {
    let primary = Fake::start(Mode::Stall).await;
    let app = TestApp::spawn_scripted(
        |s| {
            configure(s, "ollama", &primary.url, &["ollama", "embedded"]);
            s.llm.resilience.breaker_cooldown_ms = 2500;
        },
        fallback(),
    )
    .await;
    let (user, admin) = user_and_admin(&app).await;
    // The cool-down is counted on the app's clock, which moves only when the
    // test says so: however slow the machine, it does not end in the loop.
    app.clock.freeze();
    for i in 0..50 {
        let (status, body) = chat(&app, &user, &format!("question {i}")).await;
        assert_eq!(status, StatusCode::OK, "chat {i}: {body}");
        assert_eq!(body["response"], "from the fallback");
    }
    // Three failures opened the breaker; after that the stalled backend is
    // not tried again until the cool-down ends.
    assert_eq!(primary.chat_hits().len(), 3);
    app.clock.advance(Duration::from_millis(2499));
    let (status, _) = chat(&app, &user, "still cooling down").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(primary.chat_hits().len(), 3);
    let (_, health) = status_json(app.get("/llm/health", None).await).await;
    assert_eq!(health["status"], "degraded", "{health}");
    let ollama = &health["backends"][0];
    assert_eq!(ollama["name"], "ollama");
    assert_eq!(ollama["breaker"], "open");
    assert_eq!(ollama["last_error"], "timeout");
    assert_eq!(health["backends"][1]["breaker"], "closed");
    let m = metrics(&app, &admin).await;
    assert_eq!(
        sample(&m, "mongars_llm_breaker_state{backend=\"ollama\"}"),
        2.0
    );
    assert!(
        sample(
            &m,
            "mongars_llm_failovers_total{from=\"ollama\",role=\"general\"}"
        ) >= 3.0
    );

    // The backend comes back: after the cool-down one probe closes the breaker.
    primary.set_default(Mode::Ok("ollama is back".into()));
    app.clock.advance(Duration::from_millis(1));
    let (status, body) = chat(&app, &user, "are you back?").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["response"], "ollama is back");
    let (_, health) = status_json(app.get("/llm/health", None).await).await;
    assert_eq!(health["backends"][0]["breaker"], "closed", "{health}");
    let m = metrics(&app, &admin).await;
    assert_eq!(
        sample(&m, "mongars_llm_breaker_state{backend=\"ollama\"}"),
        0.0
    );
    assert_eq!(
        sample(
            &m,
            "mongars_llm_breaker_transitions_total{backend=\"ollama\",to=\"closed\"}"
        ),
        1.0
    );
    assert!(m.contains("mongars_http_requests_total{method=\"POST\",route=\"/api/v1/conversation/chat\",status=\"200\"}"));
}

#[tokio::test]
async fn a_stalled_backend_costs_at_most_the_first_token_timeout() {
    let stalled = Fake::start(Mode::Stall).await;
    let app = TestApp::spawn_with(|s| configure(s, "openai", &stalled.url, &["openai"])).await;
    let (user, _) = user_and_admin(&app).await;
    let t = Instant::now();
    let (status, body) = chat(&app, &user, "anyone?").await;
    let took = t.elapsed();
    // A stall is a timeout of its own, not a broken backend.
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["code"], "llm.timeout");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let turns = crate::conversation::stored_turns(&app, "ana").await;
    assert_eq!(turns.len(), 1, "the message is kept");
    assert_eq!(turns[0].error_code.as_deref(), Some("llm.timeout"));
}

#[tokio::test]
async fn malformed_backend_output_is_a_clean_error() {
    let cases = [
        ("ollama", Mode::BadJson),
        ("ollama", Mode::Truncated),
        ("ollama", Mode::WrongContentType),
        ("openai", Mode::BadJson),
        ("openai", Mode::Truncated),
        ("openai", Mode::WrongContentType),
        ("openai", Mode::Status(401, None)),
        ("ray", Mode::BadJson),
        ("ray", Mode::WrongContentType),
    ];
    for (backend, mode) in cases {
        let fake = Fake::start(mode.clone()).await;
        let url = if backend == "ray" {
            format!("{}/generate", fake.url)
        } else {
            fake.url.clone()
        };
        let app = TestApp::spawn_with(|s| configure(s, backend, &url, &[backend])).await;
        let (user, _) = user_and_admin(&app).await;
        let t = Instant::now();
        let (status, body) = chat(&app, &user, "hi").await;
        assert_eq!(
            status,
            StatusCode::BAD_GATEWAY,
            "{backend} {mode:?}: {body}"
        );
        // Cut after the first token: the reply fails; before it: failover
        // found nothing else.
        let code = if matches!(mode, Mode::Truncated) {
            "llm.backend_failed"
        } else {
            "llm.all_backends_failed"
        };
        assert_eq!(body["code"], code, "{backend} {mode:?}");
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "{backend} {mode:?} hung"
        );
        let (_, health) = status_json(app.get("/llm/health", None).await).await;
        let kind = health["backends"][0]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            ["malformed", "rejected"].contains(&kind.as_str()),
            "{backend} {mode:?}: {kind}"
        );
        app.shutdown().await;
    }
}

#[tokio::test]
async fn a_drop_after_the_first_token_ends_the_stream_with_an_error() {
    let fake = Fake::start(Mode::DropMidStream).await;
    let app = TestApp::spawn_scripted(
        |s| configure(s, "openai", &fake.url, &["openai", "embedded"]),
        fallback(),
    )
    .await;
    let (user, _) = user_and_admin(&app).await;
    let resp = app
        .post_json(
            "/api/v1/conversation/chat/stream",
            json!({"message": "hi"}),
            Some(&user),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains("event: token"), "{text}");
    assert!(text.contains("event: error"), "{text}");
    assert!(
        !text.contains("from the fallback"),
        "no failover after the first token"
    );
}

#[tokio::test]
async fn ollama_and_openai_answer_with_their_key_and_model() {
    for backend in ["ollama", "openai"] {
        let fake = Fake::start(Mode::Ok(format!("Hello from {backend}"))).await;
        let app = TestApp::spawn_with(|s| {
            configure(s, backend, &fake.url, &[backend]);
            s.llm.backends.get_mut(backend).unwrap().api_key = Secret::new("sk-test-SECRET-4242");
        })
        .await;
        let (user, admin) = user_and_admin(&app).await;
        let (status, body) = chat(&app, &user, "hi").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response"], format!("Hello from {backend}"));
        let hit = &fake.chat_hits()[0];
        assert_eq!(
            hit.authorization.as_deref(),
            Some("Bearer sk-test-SECRET-4242")
        );
        assert_eq!(hit.body["stream"], true);
        assert_eq!(
            hit.body["messages"].as_array().unwrap().last().unwrap()["content"],
            "hi"
        );
        // The key never shows in operator views.
        let (_, health) = status_json(app.get("/llm/health", None).await).await;
        let (_, models) = status_json(app.get("/api/v1/models", Some(&admin)).await).await;
        let m = metrics(&app, &admin).await;
        for shown in [health.to_string(), models.to_string(), m] {
            assert!(!shown.contains("SECRET-4242"));
        }
        app.shutdown().await;
    }
}

#[tokio::test]
async fn ollama_and_openai_answer_whole_when_streaming_is_off() {
    for backend in ["ollama", "openai"] {
        let fake = Fake::start(Mode::Ok(format!("Whole answer from {backend}"))).await;
        let app = TestApp::spawn_with(|s| {
            configure(s, backend, &fake.url, &[backend]);
            s.llm.backends.get_mut(backend).unwrap().stream = false;
        })
        .await;
        let (user, _) = user_and_admin(&app).await;
        let (status, body) = chat(&app, &user, "hi").await;
        assert_eq!(status, StatusCode::OK, "{backend}: {body}");
        assert_eq!(body["response"], format!("Whole answer from {backend}"));
        assert_eq!(fake.chat_hits()[0].body["stream"], false, "{backend}");
        app.shutdown().await;
    }
}

#[tokio::test]
async fn models_view_and_provisioning_pull_through_ollama() {
    let fake = Fake::start(Mode::Ok("hi".into())).await;
    let app = TestApp::spawn_scripted(
        |s| {
            configure(s, "ollama", &fake.url, &["ollama", "embedded"]);
            s.llm.role_mut(true).model = "qwen2.5-coder:1.5b".into();
        },
        fallback(),
    )
    .await;
    let (user, admin) = user_and_admin(&app).await;
    let resp = app.get("/api/v1/models", Some(&user)).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (status, view) = status_json(app.get("/api/v1/models", Some(&admin)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view["active_profile"], "default");
    assert_eq!(view["roles"][1]["role"], "coding");
    assert_eq!(
        view["roles"][1]["backends"][0]["model"],
        "qwen2.5-coder:1.5b"
    );
    assert_eq!(
        view["roles"][1]["backends"][0]["backend"],
        "ollama@qwen2.5-coder:1.5b"
    );
    let (status, result) = status_json(
        app.post_json(
            "/api/v1/models/provision",
            json!({"roles": ["coding"]}),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["ok"], true);
    assert_eq!(result["roles"][0]["results"][0]["status"], "pulled");
    let (_, again) = status_json(
        app.post_json("/api/v1/models/provision", json!({}), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(
        again["roles"][1]["results"][0]["status"], "present",
        "{again}"
    );
    let (status, _) = status_json(
        app.post_json(
            "/api/v1/models/provision",
            json!({"roles": ["vision"]}),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn metrics_need_an_admin_or_the_scrape_token() {
    let app =
        TestApp::spawn_with(|s| s.metrics.scrape_token = Secret::new("scrape-me-please")).await;
    let (user, admin) = user_and_admin(&app).await;
    assert_eq!(
        app.get("/metrics", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get("/metrics", Some(&user)).await.status(),
        StatusCode::FORBIDDEN
    );
    let resp = app.get("/metrics", Some("scrape-me-please")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics(&app, &admin).await;
    assert!(text.contains("# TYPE mongars_http_requests_total counter"));
    assert!(!text.contains("scrape-me-please"));
}

#[tokio::test]
async fn identical_deterministic_requests_are_answered_from_the_cache() {
    let fake = Fake::start(Mode::Ok("cached answer".into())).await;
    let app = TestApp::spawn_with(|s| {
        configure(s, "ollama", &fake.url, &["ollama"]);
        s.llm.cache.enabled = true;
        s.llm.role_mut(false).temperature = 0.0;
    })
    .await;
    let (user, admin) = user_and_admin(&app).await;
    for _ in 0..3 {
        let (status, body) = status_json(
            app.post_json("/llm/chat", json!({"message": "same"}), Some(&user))
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"], "cached answer");
    }
    assert_eq!(fake.chat_hits().len(), 1);
    let m = metrics(&app, &admin).await;
    assert_eq!(
        sample(&m, "mongars_llm_cache_requests_total{result=\"hit\"}"),
        2.0
    );
    assert_eq!(
        sample(&m, "mongars_llm_cache_requests_total{result=\"miss\"}"),
        1.0
    );
}
