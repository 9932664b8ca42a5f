//! `kill -9` of a real `mongars serve` in the middle of 50 concurrent
//! chats, 20 times over, on SQLite and on PostgreSQL, with memory on (so
//! that replies are being learned, embedded and written when the server
//! dies). Each round a seeded draw decides how many of the chats are
//! answered before the kill; the others wait on the backend. After each
//! restart: every message that reached the backend (so was accepted and
//! stored first) is in the database, every answered chat is complete, the
//! interrupted ones are failed as `conversation.interrupted`, none is left
//! pending, and the stored data holds together (`integrity_problems`: the
//! engine's own check, working memory, turn memories and their vectors).
//! The same on the embedded model (SQLite, 5 rounds): chats it refuses for
//! load are not accepted and may be absent; the others are there. Also:
//! `kill -9` of `mongars migrate` at a drawn moment leaves a database that
//! the next run migrates cleanly.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;
mod process;

use fake::{Fake, Mode};
use process::{login, mongars, open_db, spawn_chats, start_server, status_counts, terminate};
use std::collections::BTreeSet;
use std::time::Duration;

const CHATS: usize = 50;
const ROUNDS: usize = 20;

/// A small seeded generator: the same draws on every machine.
struct Draws(u64);

impl Draws {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_chats_loses_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_rounds(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_chats_loses_nothing_on_postgres() {
    let Some(admin) = process::postgres_admin() else {
        return;
    };
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
        ("MONGARS_LLM__BACKENDS__OPENAI__URL", fake.url.as_str()),
        ("MONGARS_LLM__BACKENDS__OPENAI__MODEL", "fake-model"),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS",
            "openai",
        ),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS", "openai"),
        ("MONGARS_LLM__CACHE__ENABLED", "false"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "100000"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "1000000"),
    ];
    let mut draws = Draws(0x5eed_2026_1204);
    let (mut answered_total, mut interrupted_total) = (0, 0);
    for round in 1..=ROUNDS {
        // The first chats to reach the backend are answered (their replies
        // then learned in the background), the others wait for a reply
        // that never comes.
        let answered = draws.below(CHATS as u64 + 1) as usize;
        let mut modes = vec![Mode::Ok("Answered before the crash".into()); answered];
        modes.extend(vec![Mode::Stall; CHATS - answered]);
        fake.then(&modes);
        let hits_before = fake.chat_hits().len();

        let (mut server, addr, _lines) = start_server(dir, &env);
        let base = format!("http://{addr}");
        let client = reqwest::Client::new();
        let token = login(&client, &base).await;
        let mut done = spawn_chats(
            &client,
            &base,
            &token,
            (0..CHATS).map(|i| format!("round {round} chat {i}")),
        );
        // The answered chats have had their 200 and every chat has reached
        // the backend: the rest are in flight when the server dies.
        for _ in 0..answered {
            let status = tokio::time::timeout(Duration::from_secs(60), done.recv())
                .await
                .expect("answered chats come back")
                .unwrap();
            assert_eq!(status, 200, "round {round}: an answered chat failed");
        }
        wait_for(|| fake.chat_hits().len() >= hits_before + CHATS).await;
        server.kill().unwrap();
        server.wait().unwrap();
        answered_total += answered;
        interrupted_total += CHATS - answered;

        // Recovery runs as the server starts.
        let (mut server, _addr, _lines) = start_server(dir, &env);
        let counts = status_counts(dir, db_url).await;
        assert_eq!(counts.get("pending"), None, "round {round}: {counts:?}");
        assert_eq!(
            counts.get("complete").copied().unwrap_or(0),
            answered_total,
            "round {round}: every 200 is stored: {counts:?}"
        );
        assert_eq!(
            counts
                .get("failed:conversation.interrupted")
                .copied()
                .unwrap_or(0),
            interrupted_total,
            "round {round}: {counts:?}"
        );
        let db = open_db(dir, db_url).await;
        let stored: BTreeSet<String> = mongars_store::all_turns(&db, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.query)
            .collect();
        let problems = mongars_store::integrity_problems(&db, false).await.unwrap();
        db.close().await;
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        for hit in &fake.chat_hits()[hits_before..] {
            let messages = hit.body["messages"].as_array().unwrap();
            let asked = messages.last().unwrap()["content"].as_str().unwrap();
            assert!(
                stored.contains(asked),
                "round {round}: {asked:?} reached the backend but is not stored"
            );
        }
        assert!(terminate(&mut server).success());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_concurrent_chats_on_the_embedded_model_loses_nothing() {
    if !process::embedded_model_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let env = [
        ("MONGARS_DATABASE__URL", db_url.as_str()),
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "crash-test-secret-crash-test-secret-0123456",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_LLM__PROFILES__DEFAULT__GENERAL__MAX_TOKENS", "16"),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__MAX_TOKENS", "16"),
        ("MONGARS_LLM__CACHE__ENABLED", "false"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "100000"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "1000000"),
    ];
    let mut draws = Draws(0xe3be_dded);
    let mut answered_total = 0;
    for round in 1..=5 {
        let (mut server, addr, _lines) = start_server(dir.path(), &env);
        let base = format!("http://{addr}");
        let client = reqwest::Client::new();
        let token = login(&client, &base).await;
        let mut done = spawn_chats(
            &client,
            &base,
            &token,
            (0..CHATS).map(|i| format!("round {round} question {i}")),
        );
        // Killed once a drawn number of replies (none to a few) came back.
        let wanted = draws.below(4) as usize;
        let mut answered = 0;
        while answered < wanted {
            let status = tokio::time::timeout(Duration::from_secs(120), done.recv())
                .await
                .expect("chats come back")
                .unwrap();
            assert!(matches!(status, 200 | 503), "round {round}: {status}");
            answered += usize::from(status == 200);
        }
        server.kill().unwrap();
        server.wait().unwrap();
        // Answers that were on their way when the server died.
        while let Ok(status) = done.try_recv() {
            answered += usize::from(status == 200);
        }
        answered_total += answered;

        let (mut server, _addr, _lines) = start_server(dir.path(), &env);
        let counts = status_counts(dir.path(), &db_url).await;
        assert_eq!(counts.get("pending"), None, "round {round}: {counts:?}");
        assert!(
            counts.get("complete").copied().unwrap_or(0) >= answered_total,
            "round {round}: every 200 is stored: {counts:?}"
        );
        for (status, n) in &counts {
            assert!(
                status == "complete"
                    || status == "failed:conversation.interrupted"
                    || status == "failed:llm.overloaded",
                "round {round}: {n} turns {status}"
            );
        }
        let db = open_db(dir.path(), &db_url).await;
        let problems = mongars_store::integrity_problems(&db, false).await.unwrap();
        db.close().await;
        assert!(problems.is_empty(), "round {round}: {problems:?}");
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

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_migration_leaves_a_database_the_next_run_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![];
    for round in 0..4 {
        urls.push(format!(
            "sqlite://{}",
            dir.path().join(format!("m{round}.db")).display()
        ));
    }
    if let Some(admin) = process::postgres_admin() {
        for _ in 0..4 {
            urls.push(mongars_store::testing::create_postgres_database(&admin).await);
        }
    }
    let mut draws = Draws(0x3160_7a7e);
    for url in &urls {
        let env = [("MONGARS_DATABASE__URL", url.as_str())];
        let mut run = mongars(dir.path(), &env)
            .arg("migrate")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Somewhere in the first quarter second (a migration run takes
        // about that long): wherever it lands, the outcome must hold.
        std::thread::sleep(Duration::from_micros(draws.below(250_000)));
        let _ = run.kill();
        let _ = run.wait();
        let again = mongars(dir.path(), &env).arg("migrate").output().unwrap();
        assert!(
            again.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        let db = open_db(dir.path(), url).await;
        assert!(db.migration_status().await.unwrap().is_current(), "{url}");
        let problems = mongars_store::integrity_problems(&db, false).await.unwrap();
        db.close().await;
        assert!(problems.is_empty(), "{url}: {problems:?}");
    }
}
