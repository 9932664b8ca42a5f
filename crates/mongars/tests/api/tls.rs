//! Remote backends over HTTPS: a server behind a private CA answers through
//! the router once `tls.ca_file` names that CA, and is refused with a clear
//! code (not a hang, not a 500) when it does not.

use crate::backends::configure;
use crate::common::fake::tls::TestPki;
use crate::common::fake::{Fake, Mode};
use crate::common::{TestApp, status_json};
use crate::conversation::user;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn an_https_backend_behind_a_private_ca_answers_once_the_ca_is_trusted() {
    let pki = TestPki::new();
    let fake = Fake::start_tls(Mode::Ok("Hello over TLS".into()), &pki).await;
    assert!(fake.url.starts_with("https://"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let trusted = TestApp::spawn_with(|s| {
        configure(s, "openai", &fake.url, &["openai"]);
        s.tls.ca_file = ca_file.clone();
    })
    .await;
    let token = user(&trusted, "ana").await;
    let hi = json!({"message": "hi"});
    let (status, body) = status_json(
        trusted
            .post_json("/api/v1/conversation/chat", hi.clone(), Some(&token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], "Hello over TLS");
    let (_, health) = status_json(trusted.get("/llm/health", None).await).await;
    assert_eq!(health["backends"][0]["healthy"], true, "{health}");

    // The same server, with only the public roots trusted.
    let untrusted = TestApp::spawn_with(|s| configure(s, "openai", &fake.url, &["openai"])).await;
    let token = user(&untrusted, "ana").await;
    let (status, body) = status_json(
        untrusted
            .post_json("/api/v1/conversation/chat", hi, Some(&token))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "llm.tls_refused");
    let (_, health) = status_json(untrusted.get("/llm/health", None).await).await;
    let backend = &health["backends"][0];
    assert_eq!(backend["healthy"], false, "{health}");
    assert_eq!(backend["last_error"], "tls", "{health}");
    assert!(
        backend["detail"].as_str().unwrap().contains("certificate"),
        "{health}"
    );
    // The turn is stored as failed with that code.
    let turns = crate::conversation::stored_turns(&untrusted, "ana").await;
    assert_eq!(turns[0].error_code.as_deref(), Some("llm.tls_refused"));
}

#[test]
fn a_ca_file_that_is_not_there_is_refused_at_start_up() {
    let err = mongars_config::load(&mongars_config::LoadOptions {
        file: None,
        env: vec![("MONGARS_TLS__CA_FILE".into(), "/nowhere/ca.pem".into())],
    })
    .unwrap_err();
    assert!(err.mentions("tls.ca_file"), "{err}");
}
