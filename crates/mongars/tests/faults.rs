//! Faults between the parts of a deployment: two `mongars serve` replicas
//! on one PostgreSQL and one Redis, each reaching them through a TCP proxy
//! of its own that the test can cut (a partition: nothing moves, nothing
//! closes) or take down (connections reset, new ones refused); and the
//! PostgreSQL server itself stopped and started again. For each fault: the requests hit by it end with a stable
//! code within their time limits (never a hang), `/ready` names what is
//! missing, the other replica serves on, nothing accepted is lost, and the
//! replica recovers by itself when the part comes back. Also: a replica
//! killed in the middle of a chat; its turn is failed, not lost.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;
mod process;
#[path = "api/common/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use fake::{Fake, Mode as Reply};
use process::{login, open_db, start_server, status_counts, terminate};
use proxy::{Mode, Proxy};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// Longest any request of this test may take: the server's own limits
/// (request 10 s, readiness checks 3 s) and some slack for a loaded machine.
const CLIENT_LIMIT: Duration = Duration::from_secs(40);

fn services() -> Option<(String, String)> {
    let pg = std::env::var("MONGARS_TEST_POSTGRES_URL").unwrap_or_default();
    let redis = std::env::var("MONGARS_TEST_REDIS_URL").unwrap_or_default();
    if pg.is_empty() || redis.is_empty() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but MONGARS_TEST_POSTGRES_URL or MONGARS_TEST_REDIS_URL is not set"
        );
        mongars_store::testing::skipped("no PostgreSQL or Redis for the fault test");
        return None;
    }
    Some((pg, redis))
}

/// The suite's PostgreSQL server: `down` stops it keeping its data, `up`
/// starts it again.
fn postgres(what: &str) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/test-postgres.sh"
    );
    let out = std::process::Command::new(script)
        .arg(what)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "test-postgres.sh {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `url` with its `host:port` replaced by `addr`.
fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!("{scheme}://{}{addr}{tail}", user.unwrap_or_default())
}

fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.parse().unwrap()
}

struct Replica {
    child: std::process::Child,
    base: String,
    db: Proxy,
    redis: Proxy,
    dir: std::path::PathBuf,
    db_url: String,
}

async fn replica(
    root: &std::path::Path,
    name: &str,
    pg: &str,
    redis: &str,
    backend: &str,
) -> Replica {
    let db = Proxy::start(upstream(pg)).await;
    let cache = Proxy::start(upstream(redis)).await;
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let db_url = through(pg, db.addr);
    let redis_url = through(redis, cache.addr);
    let prefix = format!("faults{}", std::process::id());
    let env = [
        ("MONGARS_DATABASE__URL", db_url.as_str()),
        ("MONGARS_DATABASE__CONNECT_TIMEOUT_SECS", "3"),
        ("MONGARS_REDIS__URL", redis_url.as_str()),
        ("MONGARS_REDIS__KEY_PREFIX", prefix.as_str()),
        ("MONGARS_SERVER__PORT", "0"),
        ("MONGARS_SERVER__REQUEST_TIMEOUT_SECS", "10"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "faults-test-secret-faults-test-secret-0123",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_MEMORY__ENABLED", "false"),
        ("MONGARS_LLM__BACKENDS__OPENAI__URL", backend),
        ("MONGARS_LLM__BACKENDS__OPENAI__MODEL", "fake-model"),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS",
            "openai",
        ),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS", "openai"),
        ("MONGARS_LLM__RESILIENCE__FIRST_TOKEN_TIMEOUT_MS", "5000"),
        ("MONGARS_LLM__CACHE__ENABLED", "false"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "100000"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "1000000"),
    ];
    let (child, addr, _lines) = start_server(&dir, &env);
    let _ = &_lines;
    Replica {
        child,
        base: format!("http://{addr}"),
        db,
        redis: cache,
        dir,
        db_url,
    }
}

/// A chat, its status and error code, never waiting past [`CLIENT_LIMIT`].
async fn chat(base: &str, token: &str, message: &str) -> (u16, String) {
    let sent = reqwest::Client::new()
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(token)
        .json(&json!({ "message": message }))
        .timeout(CLIENT_LIMIT)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{message}: no answer within {CLIENT_LIMIT:?}: {e}"));
    let status = sent.status().as_u16();
    let body: Value = sent.json().await.unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("").to_string())
}

/// `/ready`'s status and the names of its failing checks.
async fn ready(base: &str) -> (u16, Vec<String>) {
    let r = reqwest::Client::new()
        .get(format!("{base}/ready"))
        .timeout(CLIENT_LIMIT)
        .send()
        .await
        .expect("/ready answers");
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    let failing = body["checks"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(_, v)| v.as_str() != Some("ok"))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    (status, failing)
}

/// Poll until `check` holds (the replica recovering by itself).
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_ride_out_cut_and_restarted_parts() {
    let Some((pg_admin, redis)) = services() else {
        return;
    };
    let pg = mongars_store::testing::create_postgres_database(&pg_admin).await;
    let backend = Fake::start(Reply::Ok("Hello".into())).await;
    let root = tempfile::tempdir().unwrap();
    let mut a = replica(root.path(), "a", &pg, &redis, &backend.url).await;
    let mut b = replica(root.path(), "b", &pg, &redis, &backend.url).await;
    let client = reqwest::Client::new();
    let token = login(&client, &a.base).await;
    assert_eq!(chat(&a.base, &token, "before").await.0, 200);
    assert_eq!(ready(&a.base).await, (200, vec![]));

    // A loses Redis.
    a.redis.set(Mode::Blackhole);
    let (status, failing) = ready(&a.base).await;
    assert_eq!((status, failing), (503, vec!["redis".to_string()]));
    // Chats go on: the rate limit and events wait for Redis, the chat
    // does not.
    let (status, code) = chat(&a.base, &token, "during the Redis cut").await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(chat(&b.base, &token, "on B meanwhile").await.0, 200);
    a.redis.set(Mode::Pass);
    until("A is ready again after Redis", || async {
        ready(&a.base).await.0 == 200
    })
    .await;
    until("A chats again after Redis", || async {
        chat(&a.base, &token, "after Redis").await.0 == 200
    })
    .await;

    // A loses PostgreSQL.
    a.db.set(Mode::Blackhole);
    let (status, failing) = ready(&a.base).await;
    assert_eq!(status, 503);
    assert!(failing.contains(&"database".to_string()), "{failing:?}");
    let (status, code) = chat(&a.base, &token, "during the database cut").await;
    assert_eq!((status, code.as_str()), (503, "service.unavailable"));
    assert_eq!(chat(&b.base, &token, "on B meanwhile 2").await.0, 200);
    a.db.set(Mode::Pass);
    until("A is ready again after PostgreSQL", || async {
        ready(&a.base).await.0 == 200
    })
    .await;
    until("A chats again after PostgreSQL", || async {
        chat(&a.base, &token, "after PostgreSQL").await.0 == 200
    })
    .await;

    // PostgreSQL itself stops (its connections told so and closed) and
    // starts again: the server the suite runs on, through its own script.
    postgres("down");
    for r in [&a, &b] {
        let (status, failing) = ready(&r.base).await;
        assert_eq!(status, 503);
        assert!(failing.contains(&"database".to_string()), "{failing:?}");
        let (status, code) = chat(&r.base, &token, "while PostgreSQL is down").await;
        assert_eq!((status, code.as_str()), (503, "service.unavailable"));
    }
    postgres("up");
    for r in [&a, &b] {
        until("ready after the restart", || async {
            ready(&r.base).await.0 == 200
        })
        .await;
        until("chats after the restart", || async {
            chat(&r.base, &token, "after the restart").await.0 == 200
        })
        .await;
    }

    // Connections reset and new ones refused, as by a failing network
    // device in front of the database.
    a.db.set(Mode::Down);
    let (status, code) = chat(&a.base, &token, "while connections reset").await;
    assert_eq!((status, code.as_str()), (503, "service.unavailable"));
    a.db.set(Mode::Pass);
    until("chats after the resets", || async {
        chat(&a.base, &token, "after the resets").await.0 == 200
    })
    .await;

    // A dies in the middle of a chat; B serves on; A's turn is failed when
    // A comes back, not lost.
    backend.then(&[Reply::Stall]);
    let hits = backend.chat_hits().len();
    let cut_short = reqwest::Client::new()
        .post(format!("{}/api/v1/conversation/chat", a.base))
        .bearer_auth(&token)
        .json(&json!({"message": "cut short"}))
        .timeout(CLIENT_LIMIT)
        .send();
    let pending = tokio::spawn(cut_short);
    until("the chat reached the backend", || async {
        backend.chat_hits().len() > hits
    })
    .await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    // The client hears the connection close, not a hang.
    assert!(pending.await.unwrap().is_err());
    assert_eq!(chat(&b.base, &token, "on B after A died").await.0, 200);
    assert!(terminate(&mut b.child).success());
    let restarted = replica(root.path(), "a", &pg, &redis, &backend.url).await;
    let counts = status_counts(&restarted.dir, &restarted.db_url).await;
    assert_eq!(counts.get("pending"), None, "{counts:?}");
    assert_eq!(
        counts.get("failed:conversation.interrupted"),
        Some(&1),
        "{counts:?}"
    );
    let db = open_db(&restarted.dir, &restarted.db_url).await;
    let stored: Vec<String> = mongars_store::all_turns(&db, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.query)
        .collect();
    db.close().await;
    for asked in ["before", "on B meanwhile", "after Redis", "cut short"] {
        assert!(
            stored.iter().any(|q| q == asked),
            "{asked} lost: {stored:?}"
        );
    }
    let mut restarted = restarted;
    assert!(terminate(&mut restarted.child).success());
}
