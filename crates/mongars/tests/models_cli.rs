//! `mongars models` against a fake Ollama, as an operator runs it.

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;

use fake::{Fake, Mode};
use std::process::{Command, Output};

const KEY: &str = "ollama-key-SECRET-77";

async fn mongars(url: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongars"));
    cmd.current_dir(dir.path())
        .env_clear()
        .env("MONGARS_LOGGING__LEVEL", "debug")
        .env("MONGARS_LLM__PROFILE", "ollama")
        .env("MONGARS_LLM__PROFILES__OLLAMA__GENERAL__BACKENDS", "ollama")
        .env("MONGARS_LLM__PROFILES__OLLAMA__CODING__BACKENDS", "ollama")
        .env("MONGARS_LLM__BACKENDS__OLLAMA__URL", url)
        .env("MONGARS_LLM__BACKENDS__OLLAMA__API_KEY", KEY)
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    drop(dir);
    out
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_shows_progress_and_reports_failure_clearly() {
    let ollama = Fake::start(Mode::Ok("hi".into())).await;

    let out = mongars(&ollama.url, &["models", "check"]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("MISSING") && stdout.contains("qwen2.5-coder:1.5b"),
        "{stdout}"
    );

    let out = mongars(&ollama.url, &["models", "pull"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Debug-level logs of a whole pull never show the key.
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
    assert_eq!(
        ollama.chat_hits().len(),
        0,
        "provisioning sends no chat request"
    );
    assert!(stderr.contains("100.0%"), "no progress bar: {stderr}");
    assert!(
        stderr.contains("40.0%"),
        "no intermediate progress: {stderr}"
    );
    assert!(
        stdout.contains("coding: ollama@qwen2.5-coder:1.5b qwen2.5-coder:1.5b pulled"),
        "{stdout}"
    );
    assert!(
        stdout.contains("general: ollama llama3.2:1b present"),
        "{stdout}"
    );

    let out = mongars(&ollama.url, &["models", "list"]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("profile: ollama"), "{stdout}");
    assert!(
        stdout.contains("1. ollama@qwen2.5-coder:1.5b (ollama)"),
        "{stdout}"
    );

    *ollama.pull_error.lock().unwrap() = Some("pull model manifest: file does not exist".into());
    let out = mongars(
        &ollama.url,
        &["models", "pull", "--role", "coding", "--force"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("FAILED") && stderr.contains("file does not exist"),
        "{stdout}\n{stderr}"
    );

    let out = mongars(&ollama.url, &["config", "show"]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("[REDACTED]"));
    assert!(!stdout.contains(KEY));
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_against_a_dead_host_fails_with_the_reason() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let out = mongars(&dead, &["models", "pull"]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("FAILED") && stderr.contains("transport error"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY) && !stdout.contains(KEY));
}
