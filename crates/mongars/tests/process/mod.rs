//! `mongars` as a child process, with the environment the tests share.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

pub mod lan;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The default model the servers of these tests run.
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf"
);

/// Whether the embedded model is there (`make models`); a test that needs
/// it is skipped without it, except under `CI=true`, where it fails.
pub fn embedded_model_present() -> bool {
    if Path::new(MODEL).exists() {
        return true;
    }
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "CI=true but the model is missing"
    );
    mongars_store::testing::skipped("the embedded model is missing (run `make models`)");
    false
}

/// The suite's PostgreSQL admin URL; `None` (the test skipped) without
/// one, except under `CI=true`, where it fails.
pub fn postgres_admin() -> Option<String> {
    let admin = std::env::var("MONGARS_TEST_POSTGRES_URL").unwrap_or_default();
    if admin.is_empty() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but MONGARS_TEST_POSTGRES_URL is not set"
        );
        mongars_store::testing::skipped("no PostgreSQL (MONGARS_TEST_POSTGRES_URL not set)");
        return None;
    }
    Some(admin)
}

/// Chats sent at once, one per message, on a client of their own each; the
/// statuses as they come back (0: no answer).
pub fn spawn_chats(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    messages: impl IntoIterator<Item = String>,
) -> tokio::sync::mpsc::UnboundedReceiver<u16> {
    let (done_tx, done) = tokio::sync::mpsc::unbounded_channel();
    for message in messages {
        let req = client
            .post(format!("{base}/api/v1/conversation/chat"))
            .bearer_auth(token)
            .json(&serde_json::json!({ "message": message }));
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let status = match req.send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            let _ = done_tx.send(status);
        });
    }
    done
}

/// The binary in a clean environment, run in `dir`, with `env` on top.
pub fn mongars(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongars"));
    with_test_env(&mut cmd, dir, env);
    cmd
}

/// The binary run by `wrapper` (a program and its arguments, the binary's
/// path and its own arguments following), in the same environment.
pub fn wrapped(dir: &Path, env: &[(&str, &str)], wrapper: &[&str]) -> Command {
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_mongars"));
    with_test_env(&mut cmd, dir, env);
    // The wrapper is found on the usual path.
    cmd.env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    cmd
}

fn with_test_env(cmd: &mut Command, dir: &Path, env: &[(&str, &str)]) {
    // This process's own HTTP clients speak TLS through ring too.
    mongars_net::install_crypto();
    cmd.current_dir(dir).env_clear();
    // Cheap hashing keeps the tests quick; the defaults are measured in the bench.
    cmd.env("MONGARS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("MONGARS_AUTH__ARGON2_ITERATIONS", "1")
        .env("MONGARS_LOGGING__FORMAT", "json")
        // Tests run side by side; spinning llama.cpp threads must not
        // outnumber the cores.
        .env("MONGARS_LLM__EMBEDDED__THREADS", "1")
        .env("MONGARS_LLM__EMBEDDED__MODEL_PATH", MODEL)
        .env(
            "MONGARS_EMBEDDINGS__MODEL_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-MiniLM-L6-v2"),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
}

/// Start `mongars serve` and return it with the address it printed. Its
/// log goes to `server.log` in `dir` (appended across restarts): a pipe
/// that no one read would stop the server once full.
pub fn start_server(
    dir: &Path,
    env: &[(&str, &str)],
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    start_command(dir, mongars(dir, env))
}

/// [`start_server`] for a command made by [`mongars`] or [`wrapped`].
pub fn start_command(
    dir: &Path,
    mut cmd: Command,
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut child = cmd
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            panic!(
                "the server printed no address ({e}); its log ends:\n{}",
                tail.join("\n")
            )
        });
    let addr = line.rsplit("http://").next().unwrap().to_string();
    (child, addr, rx)
}

/// SIGTERM, then wait for the exit.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Log in as the bootstrap admin `root` / `secret-password`; the token.
pub async fn login(client: &reqwest::Client, base: &str) -> String {
    let resp = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "root", "password": "secret-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

/// The database of a server run in `dir` with `url`, opened as it opens it.
pub async fn open_db(dir: &Path, url: &str) -> mongars_store::Database {
    let mut settings = mongars_config::defaults().unwrap();
    settings.data_dir = dir.to_path_buf();
    settings.database.url = mongars_config::Secret::new(url);
    mongars::wiring::database::open_database(&settings)
        .await
        .unwrap()
}

/// Turns by `status` (and `failed:<code>`), read straight from the database.
pub async fn status_counts(dir: &Path, url: &str) -> std::collections::HashMap<String, usize> {
    let db = open_db(dir, url).await;
    let rows = mongars_store::SqlTurnRepository::new(db.clone())
        .count_by_status()
        .await
        .unwrap();
    db.close().await;
    let mut counts = std::collections::HashMap::new();
    for (status, code, n) in rows {
        let key = match code {
            Some(c) if status == "failed" => format!("failed:{c}"),
            _ => status,
        };
        *counts.entry(key).or_insert(0) += n as usize;
    }
    counts
}
