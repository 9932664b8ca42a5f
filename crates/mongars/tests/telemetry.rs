//! OpenTelemetry end to end: a real `mongars serve` whose only backend is a
//! fake Ray Serve pushes its metrics over OTLP/HTTP to a receiver on
//! loopback that decodes them with the `opentelemetry-proto` package from
//! PyPI (installed by `make test`). The `llm.ray.*` counters, the retry and
//! breaker metrics arrive with the values the traffic gave and the ones
//! `/metrics` shows, under the resource of this server. A collector that
//! never answers holds no chat up.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;
mod process;

use fake::{Fake, Mode};
use process::{login, start_server, terminate};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

fn pydeps() -> Option<String> {
    let found = std::env::var("MONGARS_TEST_PYDEPS")
        .ok()
        .filter(|p| !p.is_empty());
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but MONGARS_TEST_PYDEPS is not set: run `make test`"
        );
        mongars_store::testing::skipped(
            "no opentelemetry-proto package (MONGARS_TEST_PYDEPS not set; `make test` installs it)",
        );
    }
    found
}

/// The Python receiver, its port, and the decoded pushes as they come.
struct Collector {
    child: std::process::Child,
    port: u16,
    lines: Receiver<Value>,
}

impl Collector {
    fn start(pydeps: &str) -> Self {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/otlp_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .env("PYTHONPATH", pydeps)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next().expect("the receiver printed its port").unwrap();
        let port = first.strip_prefix("port ").unwrap().parse().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.map_while(Result::ok) {
                let _ = tx.send(serde_json::from_str(&line).unwrap());
            }
        });
        Self { child, port, lines }
    }

    /// The first push after now for which `check` holds.
    fn until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let push = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no push with {what} within a minute"));
            if check(&push) {
                return push;
            }
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env_for<'a>(ray: &'a str, collector: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MONGARS_DATABASE__URL", "sqlite://telemetry.db"),
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "telemetry-test-secret-telemetry-test-0123",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_MEMORY__ENABLED", "false"),
        ("MONGARS_LLM__CACHE__ENABLED", "false"),
        ("MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS", "ray"),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS", "ray"),
        ("MONGARS_LLM__BACKENDS__RAY__URL", ray),
        ("MONGARS_LLM__BACKENDS__RAY__RETRIES", "1"),
        ("MONGARS_LLM__BACKENDS__RAY__SCALE_CYCLES", "1"),
        ("MONGARS_LLM__RESILIENCE__RETRY_BASE_MS", "10"),
        ("MONGARS_LLM__RESILIENCE__RETRY_MAX_MS", "20"),
        ("MONGARS_LLM__RESILIENCE__BREAKER_FAILURES", "2"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "1000"),
        ("MONGARS_TELEMETRY__OTLP_ENDPOINT", collector),
        ("MONGARS_TELEMETRY__OTLP_INTERVAL_SECS", "1"),
        ("MONGARS_TELEMETRY__SERVICE_NAME", "mongars-e2e"),
    ]
}

async fn chat(client: &reqwest::Client, base: &str, token: &str) -> u16 {
    client
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(token)
        .json(&json!({"message": "hello"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `name{labels} value` samples of the Prometheus text whose name starts
/// with `prefix`, keyed by the line up to the value.
fn prometheus(text: &str, prefix: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The value of `name`'s point whose attributes include `attrs`.
fn otlp_value(push: &Value, name: &str, attrs: &[(&str, &str)]) -> Option<i64> {
    push["metrics"][name]["points"]
        .as_array()?
        .iter()
        .find(|p| attrs.iter().all(|(k, v)| p["attributes"][k] == *v))
        .and_then(|p| p["value"].as_i64())
}

#[tokio::test(flavor = "multi_thread")]
async fn ray_counters_retries_and_breaker_arrive_over_otlp_protobuf() {
    let Some(pydeps) = pydeps() else { return };
    let receiver = Collector::start(&pydeps);
    let ray = Fake::start(Mode::Ok("Hello from ray".into())).await;
    let ray_url = format!("{}/generate", ray.url);
    let collector = format!("http://127.0.0.1:{}", receiver.port);
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr, _lines) = start_server(dir.path(), &env_for(&ray_url, &collector));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;

    // One success; then a chat whose two tries both get 500 (a retry), and
    // another like it, which opens the breaker (two failures in a row).
    assert_eq!(chat(&client, &base, &token).await, 200);
    ray.then(&vec![Mode::Status(500, None); 4]);
    assert_ne!(chat(&client, &base, &token).await, 200);
    assert_ne!(chat(&client, &base, &token).await, 200);
    // Refused by the open breaker, without a request to Ray.
    assert_ne!(chat(&client, &base, &token).await, 200);
    assert_eq!(ray.chat_hits().len(), 5);

    let text = client
        .get(format!("{base}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let push = receiver.until("the five Ray requests", |p| {
        otlp_value(p, "llm.ray.requests", &[]) == Some(5)
    });
    assert_eq!(push["content_type"], "application/x-protobuf");
    let resource = &push["resource"];
    assert_eq!(resource["service.name"], "mongars-e2e");
    assert_eq!(resource["service.version"], env!("CARGO_PKG_VERSION"));
    let instance = resource["service.instance.id"].as_str().unwrap();
    assert!(
        instance.contains(&format!("/{}/", server.id())),
        "the instance names the server process: {instance}"
    );
    assert!(!resource["host.name"].as_str().unwrap().is_empty());
    assert_eq!(push["scope"]["name"], "mongars");

    // What the traffic gave.
    let requests = &push["metrics"]["llm.ray.requests"];
    assert_eq!(requests["kind"], "sum");
    assert_eq!(requests["monotonic"], true);
    assert_eq!(requests["temporality"], 2, "cumulative");
    assert_eq!(
        otlp_value(&push, "llm.ray.failures", &[("reason", "server_error")]),
        Some(4)
    );
    assert_eq!(
        otlp_value(&push, "llm.retries", &[("backend", "ray")]),
        Some(2)
    );
    assert_eq!(
        otlp_value(&push, "llm.breaker_state", &[("backend", "ray")]),
        Some(2),
        "open"
    );
    assert_eq!(push["metrics"]["llm.breaker_state"]["kind"], "gauge");
    assert_eq!(
        otlp_value(
            &push,
            "llm.breaker_transitions",
            &[("backend", "ray"), ("to", "open")]
        ),
        Some(1)
    );
    let latency = &push["metrics"]["llm.ray.latency"];
    assert_eq!(latency["kind"], "histogram");
    assert_eq!(latency["unit"], "s");
    let points = latency["points"].as_array().unwrap();
    let count: u64 = points.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(count, 5);
    for p in points {
        let buckets = p["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), p["bounds"].as_array().unwrap().len() + 1);
        let total: u64 = buckets.iter().map(|b| b.as_u64().unwrap()).sum();
        assert_eq!(total, p["count"].as_u64().unwrap());
    }

    // And every Ray, retry and breaker sample of /metrics, as exported.
    let mut compared = 0;
    for (key, value) in prometheus(&text, "mongars_llm_") {
        let (name, labels) = key.split_once('{').unwrap_or((&key, "}"));
        if !(name.starts_with("mongars_llm_ray_")
            || name.starts_with("mongars_llm_retries")
            || name.starts_with("mongars_llm_breaker"))
            || name.ends_with("_bucket")
            || name.ends_with("_sum")
            || name.ends_with("_count")
        {
            continue;
        }
        let attrs: Vec<(&str, &str)> = labels
            .trim_end_matches('}')
            .split(',')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k, v.trim_matches('"'))
            })
            .collect();
        let (otel, _) = mongars_metrics::otlp::otel_name(name);
        assert_eq!(
            otlp_value(&push, &otel, &attrs),
            Some(value as i64),
            "{key} = {value} in /metrics"
        );
        compared += 1;
    }
    assert!(compared >= 5, "{text}");
    assert!(terminate(&mut server).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_never_answers_holds_no_chat_up() {
    // Accepts connections and never reads or answers them.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = accepted_tx.send(held.len());
        }
    });
    let ray = Fake::start(Mode::Ok("Hello from ray".into())).await;
    let ray_url = format!("{}/generate", ray.url);
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr, _lines) = start_server(dir.path(), &env_for(&ray_url, &collector));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;
    // A push is waiting on the collector...
    let first = tokio::time::timeout(Duration::from_secs(60), accepted.recv())
        .await
        .expect("the exporter connects")
        .unwrap();
    assert_eq!(first, 1);
    // ...while chats are answered.
    for _ in 0..5 {
        assert_eq!(chat(&client, &base, &token).await, 200);
    }
    // The exporter gives a stuck push up and tries again on a new
    // connection, instead of piling pushes on the first.
    let mut seen = first;
    while seen < 3 {
        seen = tokio::time::timeout(Duration::from_secs(60), accepted.recv())
            .await
            .expect("the exporter tries again")
            .unwrap();
    }
    assert_eq!(chat(&client, &base, &token).await, 200);
    assert!(terminate(&mut server).success());
}
