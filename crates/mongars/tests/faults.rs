//! Faults between the parts of a deployment, on a small network of test
//! hosts (network namespaces on one bridge): two `mongars serve` replicas,
//! each in a host of its own, on one PostgreSQL and one Redis listening on
//! the bridge. Inside a replica's host the test drops what it sends to
//! Redis or PostgreSQL (a partition: nothing moves, nothing closes) or
//! answers it with resets (connections break, new ones are refused), and it
//! stops and starts PostgreSQL itself. For each fault: the requests hit by
//! it end with a stable code within their time limits (never a hang),
//! `/ready` names what is missing, the other replica serves on, nothing
//! accepted is lost, and the replica recovers by itself when the part comes
//! back. Also: a replica killed in the middle of a chat; its turn is
//! failed, not lost. Needs root, iproute2 and nftables (skipped without
//! them, except under `CI=true`).
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;
mod process;

use fake::{Fake, Mode as Reply};
use process::lan::{Cut, Host, Lan};
use process::{login, open_db, start_command, status_counts, terminate, wrapped};
use serde_json::{Value, json};
use std::time::Duration;

/// Longest any request of this test may take: the server's own limits
/// (request 10 s, readiness checks 3 s) and some slack for a loaded machine.
const CLIENT_LIMIT: Duration = Duration::from_secs(40);

/// PostgreSQL and Redis of this test alone, listening on the LAN's bridge:
/// `start`, `stop`, and for PostgreSQL `down` (stopped, data kept) and `up`.
struct Part {
    script: &'static str,
    env: Vec<(&'static str, String)>,
    url: String,
    port: u16,
}

impl Part {
    fn start(script: &'static str, env: Vec<(&'static str, String)>, port: u16) -> Part {
        let mut part = Part {
            script,
            env,
            url: String::new(),
            port,
        };
        part.url = part.run("start").trim().to_string();
        part
    }

    fn run(&self, what: &str) -> String {
        let path = format!(
            "{}/../../scripts/{}",
            env!("CARGO_MANIFEST_DIR"),
            self.script
        );
        let out = std::process::Command::new(path)
            .arg(what)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} {what}: {}",
            self.script,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Part {
    fn drop(&mut self) {
        self.run("stop");
    }
}

/// The LAN and its parts, or `None` where this machine cannot make them.
fn network() -> Option<(Lan, Part, Part)> {
    if !Lan::possible() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but the fault test cannot make network namespaces (needs root, ip, nft)"
        );
        mongars_store::testing::skipped("no network namespaces (root, ip, nft) for the fault test");
        return None;
    }
    let lan = Lan::new(2);
    let k = std::process::id() % 200;
    let tmp = std::env::temp_dir();
    let pg_port = 56_000 + k as u16;
    let pg = Part::start(
        "test-postgres.sh",
        vec![
            ("MONGARS_PG_PORT", pg_port.to_string()),
            (
                "MONGARS_PG_DIR",
                tmp.join(format!("mongars-faults-pg-{k}"))
                    .display()
                    .to_string(),
            ),
            ("MONGARS_PG_LISTEN", lan.gateway.clone()),
        ],
        pg_port,
    );
    let redis_port = 57_000 + k as u16;
    let redis = Part::start(
        "test-redis.sh",
        vec![
            ("MONGARS_REDIS_PORT", redis_port.to_string()),
            (
                "MONGARS_REDIS_DIR",
                tmp.join(format!("mongars-faults-redis-{k}"))
                    .display()
                    .to_string(),
            ),
            ("MONGARS_REDIS_BIND", lan.gateway.clone()),
        ],
        redis_port,
    );
    Some((lan, pg, redis))
}

struct Replica {
    child: std::process::Child,
    base: String,
    dir: std::path::PathBuf,
    db_url: String,
}

async fn replica(
    root: &std::path::Path,
    name: &str,
    host: &Host,
    pg: &str,
    redis: &str,
    backend: &str,
) -> Replica {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = format!("faults{}", std::process::id());
    let env = [
        ("MONGARS_DATABASE__URL", pg),
        ("MONGARS_DATABASE__CONNECT_TIMEOUT_SECS", "3"),
        ("MONGARS_REDIS__URL", redis),
        ("MONGARS_REDIS__KEY_PREFIX", prefix.as_str()),
        ("MONGARS_SERVER__HOST", host.ip.as_str()),
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
    let (child, addr, _lines) = start_command(&dir, wrapped(&dir, &env, &host.wrapper()));
    let _ = &_lines;
    Replica {
        child,
        base: format!("http://{addr}"),
        dir,
        db_url: pg.to_string(),
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
    let Some((lan, pg_server, redis_server)) = network() else {
        return;
    };
    let (ha, hb) = (&lan.hosts[0], &lan.hosts[1]);
    let pg = mongars_store::testing::create_postgres_database(&pg_server.url).await;
    let redis = redis_server.url.clone();
    let backend = Fake::start_on(Reply::Ok("Hello".into()), &lan.gateway).await;
    let root = tempfile::tempdir().unwrap();
    let mut a = replica(root.path(), "a", ha, &pg, &redis, &backend.url).await;
    let mut b = replica(root.path(), "b", hb, &pg, &redis, &backend.url).await;
    let client = reqwest::Client::new();
    let token = login(&client, &a.base).await;
    assert_eq!(chat(&a.base, &token, "before").await.0, 200);
    assert_eq!(ready(&a.base).await, (200, vec![]));

    // A is cut off from Redis.
    ha.cut(redis_server.port, Cut::Drop);
    let (status, failing) = ready(&a.base).await;
    assert_eq!((status, failing), (503, vec!["redis".to_string()]));
    // Chats go on: the rate limit and events wait for Redis, the chat
    // does not.
    let (status, code) = chat(&a.base, &token, "during the Redis cut").await;
    assert_eq!(status, 200, "{code}");
    assert_eq!(chat(&b.base, &token, "on B meanwhile").await.0, 200);
    ha.cut(redis_server.port, Cut::Pass);
    until("A is ready again after Redis", || async {
        ready(&a.base).await.0 == 200
    })
    .await;
    until("A chats again after Redis", || async {
        chat(&a.base, &token, "after Redis").await.0 == 200
    })
    .await;

    // A is cut off from PostgreSQL.
    ha.cut(pg_server.port, Cut::Drop);
    let (status, failing) = ready(&a.base).await;
    assert_eq!(status, 503);
    assert!(failing.contains(&"database".to_string()), "{failing:?}");
    let (status, code) = chat(&a.base, &token, "during the database cut").await;
    assert_eq!((status, code.as_str()), (503, "service.unavailable"));
    assert_eq!(chat(&b.base, &token, "on B meanwhile 2").await.0, 200);
    ha.cut(pg_server.port, Cut::Pass);
    until("A is ready again after PostgreSQL", || async {
        ready(&a.base).await.0 == 200
    })
    .await;
    until("A chats again after PostgreSQL", || async {
        chat(&a.base, &token, "after PostgreSQL").await.0 == 200
    })
    .await;

    // PostgreSQL itself stops (its connections told so and closed) and
    // starts again.
    pg_server.run("down");
    for r in [&a, &b] {
        let (status, failing) = ready(&r.base).await;
        assert_eq!(status, 503);
        assert!(failing.contains(&"database".to_string()), "{failing:?}");
        let (status, code) = chat(&r.base, &token, "while PostgreSQL is down").await;
        assert_eq!((status, code.as_str()), (503, "service.unavailable"));
    }
    pg_server.run("up");
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
    ha.cut(pg_server.port, Cut::Reset);
    let (status, code) = chat(&a.base, &token, "while connections reset").await;
    assert_eq!((status, code.as_str()), (503, "service.unavailable"));
    ha.cut(pg_server.port, Cut::Pass);
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
    let restarted = replica(root.path(), "a", ha, &pg, &redis, &backend.url).await;
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
