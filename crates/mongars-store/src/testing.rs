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
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    format!("{base}/{name}")
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
