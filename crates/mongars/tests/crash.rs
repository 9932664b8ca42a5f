//! `kill -9` in the middle of 24 concurrent chats, three times over, on
//! SQLite and on PostgreSQL: after each restart no turn is left `pending`,
//! every chat that was answered 200 is stored complete, and the turns that
//! were in flight are failed as `conversation.interrupted`.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;
mod process;

use fake::{Fake, Mode};
use process::{login, start_server, status_counts, terminate};
use serde_json::json;
use std::time::Duration;

const CHATS: usize = 24;
/// Of each round's chats, this many are answered before the kill.
const ANSWERED: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_chats_leaves_no_turn_pending_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_rounds(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_chats_leaves_no_turn_pending_on_postgres() {
    let admin = std::env::var("MONGARS_TEST_POSTGRES_URL").unwrap_or_default();
    if admin.is_empty() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but MONGARS_TEST_POSTGRES_URL is not set"
        );
        mongars_store::testing::skipped("no PostgreSQL (MONGARS_TEST_POSTGRES_URL not set)");
        return;
    }
    let url = mongars_store::testing::create_postgres_database(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    crash_rounds(dir.path(), &url).await;
}

async fn crash_rounds(dir: &std::path::Path, db_url: &str) {
    let fake = Fake::start(Mode::Stall).await;
    let env = [
        ("MONGARS_DATABASE__URL", db_url),
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "crash-test-secret-crash-test-secret-0123456",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_MEMORY__ENABLED", "false"),
        ("MONGARS_LLM__BACKENDS__OPENAI__URL", fake.url.as_str()),
        ("MONGARS_LLM__BACKENDS__OPENAI__MODEL", "fake-model"),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS",
            "openai",
        ),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS", "openai"),
        ("MONGARS_LLM__CACHE__ENABLED", "false"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "1000"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "60000"),
    ];
    let mut answered_total = 0;
    for round in 1..=3 {
        // The first chats to reach the backend are answered, the others
        // wait for a reply that never comes.
        let mut modes = vec![Mode::Ok("Answered before the crash".into()); ANSWERED];
        modes.extend(vec![Mode::Stall; CHATS - ANSWERED]);
        fake.then(&modes);
        let hits_before = fake.chat_hits().len();

        let (mut server, addr, _lines) = start_server(dir, &env);
        let token = login(&reqwest::Client::new(), &format!("http://{addr}")).await;
        let client = reqwest::Client::new();
        let (done_tx, mut done) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..CHATS {
            let req = client
                .post(format!("http://{addr}/api/v1/conversation/chat"))
                .bearer_auth(&token)
                .json(&json!({"message": format!("round {round} chat {i}")}));
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                let status = match req.send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                let _ = done_tx.send(status);
            });
        }
        // Every chat has reached the backend, and the answered ones have
        // had their 200: the rest are in flight when the server dies.
        let mut oks = 0;
        while oks < ANSWERED {
            let status = tokio::time::timeout(Duration::from_secs(60), done.recv())
                .await
                .expect("answered chats come back")
                .unwrap();
            assert_eq!(status, 200, "round {round}: an answered chat failed");
            oks += 1;
        }
        wait_for(|| fake.chat_hits().len() >= hits_before + CHATS).await;
        server.kill().unwrap();
        server.wait().unwrap();
        answered_total += oks;

        let (mut server, _addr, _lines) = start_server(dir, &env);
        let counts = status_counts(dir, db_url).await;
        assert_eq!(counts.get("pending"), None, "round {round}: {counts:?}");
        assert_eq!(
            counts.get("complete").copied().unwrap_or(0),
            answered_total,
            "round {round}: every 200 is stored: {counts:?}"
        );
        assert_eq!(
            counts.get("failed:conversation.interrupted").copied(),
            Some(round * (CHATS - ANSWERED)),
            "round {round}: {counts:?}"
        );
        assert!(terminate(&mut server).success());
    }
}

async fn wait_for(mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chats never all reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
