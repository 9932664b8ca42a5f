//! The official `openai` Python package, installed from PyPI by `make test`
//! into target/pydeps, gets a completion and a streamed completion.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/mod.rs"]
mod common;

use common::TestApp;
use mongars_core::domain::Role;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_official_openai_client_works_unchanged() {
    let pydeps = std::env::var("MONGARS_TEST_PYDEPS")
        .ok()
        .filter(|p| !p.is_empty());
    let Some(pydeps) = pydeps else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but MONGARS_TEST_PYDEPS is not set: run `make test`"
        );
        eprintln!(
            "skipped: openai client test (MONGARS_TEST_PYDEPS not set; `make test` installs it)"
        );
        return;
    };
    let Some(app) = TestApp::spawn_real(|_| {}).await else {
        return;
    };
    app.add_user("dev", "dev-password", Role::User).await;
    let token = app.login("dev", "dev-password").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let base = format!("{}/v1", app.base);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .arg(token)
            .env("PYTHONPATH", pydeps)
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openai client failed:\n{stdout}\n{stderr}"
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(result["models"][0], "SmolLM2-135M-Instruct.Q4_1");
    assert!(
        result["completion"].as_str().unwrap().contains("Paris"),
        "{result}"
    );
    assert!(result["chunks"].as_u64().unwrap() > 1, "{result}");
}
