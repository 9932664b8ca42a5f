//! PostgreSQL over TLS. `make test` starts its server with `ssl=on` and a
//! certificate signed by a throw-away CA, and hands the tests a URL with
//! `sslmode=verify-full&sslrootcert=<that CA>`: every PostgreSQL test of the
//! suite runs encrypted and verified. Here: the other modes, and a server
//! whose CA is not trusted.

#![allow(clippy::disallowed_methods)] // test harness variables, not settings

use mongars_store::{Database, DbConfig, DbTarget, testing};
use std::time::Duration;

fn config(url: String, ca_file: Option<std::path::PathBuf>) -> DbConfig {
    DbConfig {
        target: DbTarget::Postgres(url),
        max_connections: 1,
        connect_timeout: Duration::from_secs(10),
        ca_file,
    }
}

/// The test server's URL split into (URL without options, its CA file).
fn server() -> Option<(String, std::path::PathBuf)> {
    let url = std::env::var("MONGARS_TEST_POSTGRES_URL").unwrap_or_default();
    if url.is_empty() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but no PostgreSQL"
        );
        testing::skipped("no PostgreSQL (MONGARS_TEST_POSTGRES_URL not set)");
        return None;
    }
    let (base, query) = url.split_once('?').expect("the test URL has TLS options");
    let ca = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("sslrootcert="))
        .expect("the test URL names its CA");
    Some((base.to_string(), ca.into()))
}

#[tokio::test]
async fn postgres_is_reached_over_verified_tls() {
    let Some((base, ca)) = server() else { return };
    // The suite's own URL: verify-full against the test CA.
    let full = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let db = Database::connect(&config(full, None)).await.unwrap();
    assert!(db.encrypted().await.unwrap());
    // The CA from settings (tls.ca_file) when the URL names none.
    let db = Database::connect(&config(format!("{base}?sslmode=verify-full"), Some(ca)))
        .await
        .unwrap();
    assert!(db.encrypted().await.unwrap());
    // Encrypted without verification, as `sslmode=require` asks.
    let db = Database::connect(&config(format!("{base}?sslmode=require"), None))
        .await
        .unwrap();
    assert!(db.encrypted().await.unwrap());
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused_clearly() {
    let Some((base, _)) = server() else { return };
    // Only the public roots: the test CA is not among them.
    let err = Database::connect(&config(format!("{base}?sslmode=verify-full"), None))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("PostgreSQL"), "{err}");
    assert!(
        err.to_lowercase().contains("certificate") || err.to_lowercase().contains("tls"),
        "{err}"
    );
    assert!(
        !err.contains("postgres://"),
        "no URL (credentials) in the error: {err}"
    );
}
