//! Secrets from Vault: a fake Vault over TLS (KV v2 reads, Kubernetes
//! login) with a throw-away CA. The server takes its JWT key and database
//! URL from it, retries while it is sealed, and refuses to start, naming the
//! path, when the secret is missing.

use crate::common::fake::tls::{TestPki, serve};
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const JWT_SECRET: &str = "jwt-secret-from-vault-0123456789-abcdef";
const FILE_TOKEN: &str = "s.file-token";
const K8S_TOKEN: &str = "s.kubernetes-token";
const SA_JWT: &str = "eyJ.service-account.token";

struct FakeVault {
    url: String,
    ca_file: std::path::PathBuf,
    reads: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

/// A Vault holding `secret/mongars/server` with the JWT key and a database
/// URL in `db_dir`; sealed (503) for the first read.
async fn fake_vault(db_dir: &std::path::Path) -> FakeVault {
    let pki = TestPki::new();
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    let database = format!("sqlite://{}", db_dir.join("from-vault.db").display());
    let app = Router::new()
        .route(
            "/v1/auth/kubernetes/login",
            post(|body: axum::Json<Value>| async move {
                if body["role"] == "mongars" && body["jwt"] == SA_JWT {
                    (
                        StatusCode::OK,
                        axum::Json(json!({"auth": {"client_token": K8S_TOKEN}})),
                    )
                } else {
                    (
                        StatusCode::FORBIDDEN,
                        axum::Json(json!({"errors": ["permission denied"]})),
                    )
                }
            }),
        )
        .route(
            "/v1/secret/data/{*path}",
            get(move |Path(path): Path<String>, headers: HeaderMap| {
                let (counted, database) = (counted.clone(), database.clone());
                async move {
                    let token = headers.get("x-vault-token").and_then(|t| t.to_str().ok());
                    if !matches!(token, Some(FILE_TOKEN | K8S_TOKEN)) {
                        return (StatusCode::FORBIDDEN, axum::Json(json!({"errors": []})));
                    }
                    if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(json!({"errors": ["Vault is sealed"]})),
                        );
                    }
                    if path != "mongars/server" {
                        return (StatusCode::NOT_FOUND, axum::Json(json!({"errors": []})));
                    }
                    let data = json!({
                        "auth.jwt_secret": JWT_SECRET,
                        "database.url": database,
                    });
                    (
                        StatusCode::OK,
                        axum::Json(json!({"data": {"data": data, "metadata": {"version": 3}}})),
                    )
                }
            }),
        );
    let url = serve(app, &pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("vault-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    FakeVault {
        url,
        ca_file,
        reads,
        _dir: dir,
    }
}

fn vault_settings(vault: &FakeVault, data: &std::path::Path) -> mongars_config::Settings {
    let mut s = crate::common::settings(data);
    s.auth.jwt_secret = mongars_config::Secret::default();
    s.vault.address = vault.url.clone();
    s.tls.ca_file = vault.ca_file.clone();
    s
}

#[tokio::test]
async fn kubernetes_login_then_the_secret_over_tls_after_a_sealed_answer() {
    let data = tempfile::tempdir().unwrap();
    let vault = fake_vault(data.path()).await;
    let mut s = vault_settings(&vault, data.path());
    s.vault.kubernetes_role = "mongars".into();
    let sa = data.path().join("sa-token");
    std::fs::write(&sa, SA_JWT).unwrap();
    s.vault.kubernetes_token_file = sa.clone();
    let set = mongars::vault::apply(&mut s).await.unwrap();
    assert_eq!(set, ["auth.jwt_secret", "database.url"]);
    assert_eq!(s.auth.jwt_secret.expose(), JWT_SECRET);
    assert!(s.database.url.expose().ends_with("from-vault.db"));
    assert_eq!(
        vault.reads.load(Ordering::SeqCst),
        2,
        "read again once unsealed"
    );

    // A role Vault does not know: a clear refusal, no retries.
    let mut s = vault_settings(&vault, data.path());
    s.vault.kubernetes_role = "intruder".into();
    s.vault.kubernetes_token_file = sa;
    let err = format!("{:#}", mongars::vault::apply(&mut s).await.unwrap_err());
    assert!(
        err.contains("auth/kubernetes/login") && err.contains("intruder"),
        "{err}"
    );
    assert!(err.contains("403"), "{err}");

    // Without the CA, Vault's certificate is refused.
    let mut s = vault_settings(&vault, data.path());
    s.tls.ca_file = std::path::PathBuf::new();
    s.vault.token_file = data.path().join("sa-token");
    let err = format!("{:#}", mongars::vault::apply(&mut s).await.unwrap_err());
    assert!(err.contains("TLS certificate was refused"), "{err}");
}

/// `mongars serve` with Vault settings from the environment.
fn serve_with_vault(vault: &FakeVault, data: &std::path::Path, path: &str) -> std::process::Child {
    let token = data.join("vault-token");
    std::fs::write(&token, format!("{FILE_TOKEN}\n")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_mongars"))
        .arg("serve")
        .current_dir(data)
        .env_clear()
        .env("MONGARS_DATA_DIR", data)
        .env("MONGARS_SERVER__PORT", "0")
        .env("MONGARS_MEMORY__ENABLED", "false")
        .env("MONGARS_LLM__EMBEDDED__THREADS", "1")
        .env(
            "MONGARS_LLM__EMBEDDED__MODEL_PATH",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf"
            ),
        )
        .env("MONGARS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("MONGARS_AUTH__ARGON2_ITERATIONS", "1")
        .env("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "admin")
        .env(
            "MONGARS_BOOTSTRAP__ADMIN_PASSWORD",
            "correct-horse-battery-1",
        )
        .env("MONGARS_VAULT__ADDRESS", &vault.url)
        .env("MONGARS_VAULT__PATH", path)
        .env("MONGARS_VAULT__TOKEN_FILE", &token)
        .env("MONGARS_TLS__CA_FILE", &vault.ca_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn the_server_signs_with_the_vault_key_and_stores_in_the_vault_database() {
    if crate::common::model_path().is_none() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let vault = fake_vault(data.path()).await;
    let mut child = serve_with_vault(&vault, data.path(), "mongars/server");
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let line = tokio::task::spawn_blocking(move || {
        stdout
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on"))
    })
    .await
    .unwrap();
    let Some(line) = line else {
        let out = child.wait_with_output().unwrap();
        panic!(
            "the server stopped: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let base = line
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    mongars_net::install_crypto();
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/token"))
        .form(&[
            ("username", "admin"),
            ("password", "correct-horse-battery-1"),
            ("grant_type", "password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let token = token["access_token"].as_str().expect("a token");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &validation,
    )
    .expect("signed with the key from Vault");
    assert!(
        data.path().join("from-vault.db").exists(),
        "the database Vault named"
    );
    assert!(!data.path().join("mongars.db").exists());
    assert!(!data.path().join("jwt.key").exists(), "no key of its own");
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_naming_its_path() {
    let data = tempfile::tempdir().unwrap();
    let vault = fake_vault(data.path()).await;
    let child = serve_with_vault(&vault, data.path(), "mongars/elsewhere");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no secret at secret/data/mongars/elsewhere in Vault"),
        "{stderr}"
    );
    assert!(!stderr.contains(JWT_SECRET));
}
