//! The official `openai` Python package, installed from PyPI by `make test`
//! into target/pydeps, gets a completion, a streamed completion and
//! embeddings: with an access token, and with an API key made by
//! `mongars key add`, which stops working when revoked or when its owner's
//! password changes.
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
        mongars_store::testing::skipped(
            "no openai package (MONGARS_TEST_PYDEPS not set; `make test` installs it)",
        );
        return;
    };
    let Some(app) = TestApp::spawn_real(|_| {}).await else {
        return;
    };
    app.add_user("dev", "dev-password", Role::User).await;
    let token = app.login("dev", "dev-password").await;
    let base = format!("{}/v1", app.base);
    check_client(&pydeps, &base, &token).await;

    // An API key from the CLI, used as the client's api_key.
    let key = cli(&app, &["key", "add", "dev", "--name", "python"], None);
    assert!(key.starts_with("mg_"), "{key}");
    check_client(&pydeps, &base, &key).await;
    let models = |credential: String| {
        let req = app
            .client
            .get(app.url("/v1/models"))
            .bearer_auth(credential);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(models(key.clone()).await, 200);
    // Revoked over HTTP: refused at once.
    let (_, listed) = common::status_json(app.get("/api/v1/auth/keys", Some(&token)).await).await;
    let id = listed["keys"][0]["id"].as_str().unwrap().to_string();
    let gone = app
        .client
        .delete(app.url(&format!("/api/v1/auth/keys/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    assert_eq!(models(key).await, 401);
    // A password changed by the operator ends every key of the account.
    let other = cli(&app, &["key", "add", "dev"], None);
    assert_eq!(models(other.clone()).await, 200);
    cli(
        &app,
        &["user", "passwd", "dev"],
        Some("a-brand-new-password\n"),
    );
    assert_eq!(models(other).await, 401);
}

/// Run the client script with `credential`; check what it got.
async fn check_client(pydeps: &str, base: &str, credential: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let (base, credential, pydeps) = (base.to_string(), credential.to_string(), pydeps.to_string());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(base)
            .arg(credential)
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
    assert_eq!(
        result["embeddings"],
        serde_json::json!([384, 384]),
        "{result}"
    );
}

/// `mongars ARGS` on the test server's database; its standard output.
fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mongars"))
        .args(args)
        .env_clear()
        .env("MONGARS_DATA_DIR", &app.settings.data_dir)
        .env("MONGARS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("MONGARS_AUTH__ARGON2_ITERATIONS", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("mongars");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or("").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mongars {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
