//! Router overhead and failover time, against an in-process fake
//! OpenAI-compatible server that answers at once.
//!
//! 1. The raw OpenAI-compatible backend (baseline) and the full router
//!    (cache off) on the same fake: p50/p99 per request and the difference.
//! 2. A primary that refuses connections before the same fake: time per
//!    request while its breaker is closed (every request tries it first) and
//!    once it is open (skipped).

use super::args::RouterArgs;
use super::pct;
use axum::body::Body;
use axum::http::{Response, header};
use mongars_config::Settings;
use mongars_core::domain::{ChatMessage, ChatRole, GenerationRequest, SamplingParams};
use mongars_core::ports::{LlmBackend, read_to_end};
use mongars_llm::remote::openai::OpenAi;
use mongars_llm::remote::{RemoteBackend, RemoteConfig};
use mongars_metrics::Metrics;
use std::time::{Duration, Instant};

const SSE: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"},\"finish_reason\":null}]}\n\n\
data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n\
data: [DONE]\n\n";

/// An OpenAI-compatible server that streams a one-word reply at once and
/// lists one model, `fake`.
pub(crate) fn fake_app() -> axum::Router {
    axum::Router::new()
        .route(
            "/v1/chat/completions",
            axum::routing::post(|| async {
                Response::builder()
                    .header(header::CONTENT_TYPE, "text/event-stream")
                    .body(Body::from(SSE))
                    .unwrap_or_default()
            }),
        )
        .route(
            "/v1/models",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!({"object": "list", "data": [{"id": "fake"}]}))
            }),
        )
}

async fn fake() -> anyhow::Result<String> {
    let app = fake_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn request() -> GenerationRequest {
    GenerationRequest::classified(
        vec![ChatMessage::new(ChatRole::User, "ping")],
        SamplingParams::greedy(8),
    )
}

/// Milliseconds per request, `n` requests one after the other.
async fn timed(backend: &dyn LlmBackend, n: u32) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let t = Instant::now();
        read_to_end(backend.generate(request()).await?).await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(out)
}

fn settings_for(base: &Settings, url: &str, chain: &[&str], dead: &str, failures: u32) -> Settings {
    let mut s = base.clone();
    s.llm.cache.enabled = false;
    let o = s.llm.backends.get_mut("openai").expect("default entry");
    o.url = url.to_string();
    o.model = "fake".into();
    o.retries = 0;
    let d = s.llm.backends.get_mut("ollama").expect("default entry");
    d.url = dead.to_string();
    d.retries = 0;
    for coding in [false, true] {
        s.llm.role_mut(coding).backends = chain.iter().map(|c| c.to_string()).collect();
    }
    s.llm.resilience.breaker_failures = failures;
    s.llm.resilience.breaker_cooldown_ms = 3_600_000;
    s
}

pub async fn run(settings: Settings, args: RouterArgs) -> anyhow::Result<i32> {
    let url = fake().await?;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", l.local_addr()?)
    };
    let raw = RemoteBackend::new(
        RemoteConfig {
            name: "openai".into(),
            urls: vec![url.clone()],
            model: "fake".into(),
            api_key: None,
            context_tokens: 4096,
            connect_timeout: Duration::from_secs(2),
            tls: mongars_net::Tls::public_roots(),
        },
        OpenAi { stream: true },
    )?;
    let n = args.requests;
    timed(&raw, 50).await?;
    let base = timed(&raw, n).await?;

    let s = settings_for(&settings, &url, &["openai"], &dead, 1000);
    let router = crate::wiring::llm::router_from_settings(
        &s,
        None,
        &Metrics::new(),
        &crate::wiring::system_clock(),
    )
    .await?;
    timed(router.as_ref(), 50).await?;
    let routed = timed(router.as_ref(), n).await?;

    println!("router overhead ({n} requests, fake backend answering at once)");
    println!(
        "  raw backend   p50 {:7.3} ms   p99 {:7.3} ms",
        pct(&base, 50.0),
        pct(&base, 99.0)
    );
    println!(
        "  via router    p50 {:7.3} ms   p99 {:7.3} ms",
        pct(&routed, 50.0),
        pct(&routed, 99.0)
    );
    println!(
        "  overhead      p50 {:7.3} ms   p99 {:7.3} ms",
        pct(&routed, 50.0) - pct(&base, 50.0),
        pct(&routed, 99.0) - pct(&base, 99.0)
    );

    // Breaker closed: every request tries the dead primary first.
    let s = settings_for(&settings, &url, &["ollama", "openai"], &dead, u32::MAX);
    let closed = crate::wiring::llm::router_from_settings(
        &s,
        None,
        &Metrics::new(),
        &crate::wiring::system_clock(),
    )
    .await?;
    let via_closed = timed(closed.as_ref(), n.min(200)).await?;
    // Breaker open after the first failure: the primary is skipped.
    let s = settings_for(&settings, &url, &["ollama", "openai"], &dead, 1);
    let open = crate::wiring::llm::router_from_settings(
        &s,
        None,
        &Metrics::new(),
        &crate::wiring::system_clock(),
    )
    .await?;
    timed(open.as_ref(), 1).await?;
    let via_open = timed(open.as_ref(), n.min(200)).await?;
    println!("failover from a dead primary (connection refused) to the fake");
    println!(
        "  breaker closed p50 {:7.3} ms   p99 {:7.3} ms",
        pct(&via_closed, 50.0),
        pct(&via_closed, 99.0)
    );
    println!(
        "  breaker open   p50 {:7.3} ms   p99 {:7.3} ms",
        pct(&via_open, 50.0),
        pct(&via_open, 99.0)
    );
    Ok(0)
}
