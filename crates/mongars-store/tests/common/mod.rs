//! Shared by the contract tests: a fresh database of each engine, and a
//! macro generating one test per engine for each check.

#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

use mongars_core::ports::ProfileSave;
use mongars_store::{Database, testing};

/// A style profile of `json` to save over version `read`, now.
pub fn profile_save(user_id: i64, json: &str, read: Option<u64>) -> ProfileSave {
    ProfileSave {
        user_id,
        json: json.into(),
        at: chrono::Utc::now(),
        read,
    }
}

pub async fn sqlite() -> (Database, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (testing::fresh_sqlite(dir.path()).await, dir)
}

pub async fn postgres() -> Option<Database> {
    match std::env::var("MONGARS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(testing::fresh_postgres(&url).await),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but MONGARS_TEST_POSTGRES_URL is not set: run `make test`")
        }
        _ => {
            testing::skipped("no PostgreSQL (set MONGARS_TEST_POSTGRES_URL or run `make test`)");
            None
        }
    }
}

/// Generate one test per engine for each contract check.
#[macro_export]
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $name() { let (db, _dir) = super::common::sqlite().await; super::$name(db).await; })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $name() { if let Some(db) = super::common::postgres().await { super::$name(db).await; } })*
        }
    };
}
