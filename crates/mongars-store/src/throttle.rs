//! Password-attempt counters, implementing the core's `LoginThrottleStore`.
//! Kept in the database so that every replica sharing it sees the same counts.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use mongars_core::ports::{FailureWindow, LoginThrottleStore, RepoError};

#[derive(Clone)]
pub struct SqlThrottleStore {
    db: Database,
}

impl SqlThrottleStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl LoginThrottleStore for SqlThrottleStore {
    async fn window(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Option<FailureWindow>, RepoError> {
        let row: Option<(i64, i64)> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "SELECT failures, window_started_at FROM login_throttle \
                 WHERE key = $1 AND window_started_at > $2",
            )
            .bind(key)
            .bind(now_ms - window_ms)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(to_window))
    }

    async fn count(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
    ) -> Result<FailureWindow, RepoError> {
        // One statement: concurrent attempts never lose a count, and each
        // sees its own number (the row is locked for the update).
        let row: (i64, i64) = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "INSERT INTO login_throttle (key, failures, window_started_at) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN login_throttle.window_started_at > $3 \
                                   THEN login_throttle.failures + 1 ELSE 1 END, \
                   window_started_at = CASE WHEN login_throttle.window_started_at > $3 \
                                   THEN login_throttle.window_started_at ELSE $2 END \
                 RETURNING failures, window_started_at",
            )
            .bind(key)
            .bind(now_ms)
            .bind(now_ms - window_ms)
            .fetch_one(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(to_window(row))
    }

    async fn uncount(&self, key: &str, started_at_ms: i64) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE login_throttle SET failures = failures - 1 \
                 WHERE key = $1 AND window_started_at = $2 AND failures > 0",
            )
            .bind(key)
            .bind(started_at_ms)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn clear(&self, key: &str) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query("DELETE FROM login_throttle WHERE key = $1")
                .bind(key)
                .execute(p)
                .await
                .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn purge_expired(&self, now_ms: i64, window_ms: i64) -> Result<u64, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query("DELETE FROM login_throttle WHERE window_started_at <= $1")
                .bind(now_ms - window_ms)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(repo_err)
    }
}

fn to_window((failures, started_at_ms): (i64, i64)) -> FailureWindow {
    FailureWindow {
        failures: failures.clamp(0, i64::from(u32::MAX)) as u32,
        started_at_ms,
    }
}
