//! Fresh databases for tests (feature `testing`). Each call gives a database
//! nobody else uses, so tests run in parallel without seeing each other.

use crate::db::{Database, DbConfig, DbTarget};
use std::path::Path;
use std::time::Duration;

fn config(target: DbTarget) -> DbConfig {
    DbConfig {
        target,
        max_connections: 5,
        connect_timeout: Duration::from_secs(10),
        ca_file: None,
    }
}

/// A new SQLite file inside `dir`, migrated.
pub async fn fresh_sqlite(dir: &Path) -> Database {
    let path = dir.join(format!("test-{}.db", uuid::Uuid::new_v4()));
    let db = Database::connect(&config(DbTarget::Sqlite(path)))
        .await
        .expect("open SQLite");
    db.migrate().await.expect("migrate SQLite");
    db
}

/// Create a new, empty PostgreSQL database on the server of `admin_url` and
/// return its URL (not migrated).
pub async fn create_postgres_database(admin_url: &str) -> String {
    let admin = Database::connect(&config(DbTarget::Postgres(admin_url.to_string())))
        .await
        .expect("connect to the test PostgreSQL server");
    let name = format!("mongars_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute_unchecked(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    admin.close().await;
    // Same server and options (`?sslmode=...`), another database.
    let (path, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(p, q)| (p, Some(q)));
    let base = path.rsplit_once('/').map_or(path, |(base, _)| base);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Drop a database made by [`create_postgres_database`] (`url` is what it
/// returned); errors are ignored, as for any clean-up.
pub async fn drop_postgres_database(admin_url: &str, url: &str) {
    let path = url.split_once('?').map_or(url, |(p, _)| p);
    let Some((_, name)) = path.rsplit_once('/') else {
        return;
    };
    if !name.starts_with("mongars_test_")
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return;
    }
    if let Ok(admin) = Database::connect(&config(DbTarget::Postgres(admin_url.to_string()))).await {
        let _ = admin
            .execute_unchecked(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
        admin.close().await;
    }
}

/// A new PostgreSQL database on the server of `admin_url`, migrated.
pub async fn fresh_postgres(admin_url: &str) -> Database {
    let url = create_postgres_database(admin_url).await;
    let db = Database::connect(&config(DbTarget::Postgres(url)))
        .await
        .expect("connect to the new test database");
    db.migrate().await.expect("migrate PostgreSQL");
    db
}

/// The default generation model, fetched by `make models`. Missing:
/// recorded as skipped and `None`; under `CI=true` the test fails instead.
#[allow(clippy::disallowed_methods)] // a test harness variable, not a setting
pub fn default_model() -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "CI=true but the model is missing: `make test` fetches it"
    );
    skipped(&format!(
        "the model {} is missing (run `make models`)",
        path.display()
    ));
    None
}

/// Record that the running test could not run, and why: printed now, and
/// appended to the file `MONGARS_TEST_SKIPS` names, which `make test` lists
/// above its closing line and counts there as skipped. The test is named
/// after its thread, which the test harness names after the test. Under
/// `CI=true` tests do not skip: they fail instead.
pub fn skipped(reason: &str) {
    record("skip", reason);
}

/// Like [`skipped`], for a test that still did part of its work (on SQLite,
/// say, but not on PostgreSQL): listed, not counted as skipped.
pub fn left_out(reason: &str) {
    record("part", reason);
}

#[allow(clippy::disallowed_methods)] // a test harness variable, not a setting
fn record(kind: &str, reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    eprintln!("{kind}: {test}: {reason}");
    let Some(path) = std::env::var_os("MONGARS_TEST_SKIPS").filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format!("{kind}\t{test}: {reason}\n");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut file) = file {
        let _ = std::io::Write::write_all(&mut file, line.as_bytes());
    }
}
