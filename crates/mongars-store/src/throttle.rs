//! Password-attempt counters, implementing the core's `LoginThrottleStore`.
//! Kept in the database so that every replica sharing it sees the same counts.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use mongars_core::ports::{FailureWindow, LoginThrottleStore, RepoError};

/// Count one attempt against a key: a new row, or one more in its open
/// window, or a new window when the last one has closed. `$n` is the key,
/// then now, then the oldest start of a window still open.
const COUNT_ONE: &str = "INSERT INTO login_throttle (key, failures, window_started_at) \
     VALUES ($1, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
       failures = CASE WHEN login_throttle.window_started_at > $3 \
                       THEN login_throttle.failures + 1 ELSE 1 END, \
       window_started_at = CASE WHEN login_throttle.window_started_at > $3 \
                       THEN login_throttle.window_started_at ELSE $2 END \
     RETURNING key, failures, window_started_at";

/// [`COUNT_ONE`] for two keys at once (a username and an address).
const COUNT_TWO: &str = "INSERT INTO login_throttle (key, failures, window_started_at) \
     VALUES ($1, 1, $3), ($2, 1, $3) \
     ON CONFLICT (key) DO UPDATE SET \
       failures = CASE WHEN login_throttle.window_started_at > $4 \
                       THEN login_throttle.failures + 1 ELSE 1 END, \
       window_started_at = CASE WHEN login_throttle.window_started_at > $4 \
                       THEN login_throttle.window_started_at ELSE $3 END \
     RETURNING key, failures, window_started_at";

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
        keys: &[&str],
        now_ms: i64,
        window_ms: i64,
    ) -> Result<Vec<FailureWindow>, RepoError> {
        // One statement for all the keys: concurrent attempts never lose a
        // count, and each sees its own number (the rows are locked for the
        // update).
        let sql = match keys.len() {
            0 => return Ok(Vec::new()),
            1 => COUNT_ONE,
            2 => COUNT_TWO,
            _ => return Err(RepoError::Other("at most two keys per attempt".into())),
        };
        let rows: Vec<(String, i64, i64)> = on_pool!(self.db.pool(), |p| {
            let mut q = sqlx::query_as(sql);
            for key in keys {
                q = q.bind(*key);
            }
            q.bind(now_ms).bind(now_ms - window_ms).fetch_all(p).await
        })
        .map_err(repo_err)?;
        keys.iter()
            .map(|k| {
                rows.iter()
                    .find(|(key, _, _)| key == k)
                    .map(|(_, failures, started)| to_window((*failures, *started)))
                    .ok_or_else(|| RepoError::Other(format!("no count returned for {k}")))
            })
            .collect()
    }

    async fn settle(
        &self,
        cleared: &str,
        taken_back: Option<(&str, i64)>,
    ) -> Result<(), RepoError> {
        let (back_key, back_window) = taken_back.unzip();
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE login_throttle SET \
                   failures = CASE WHEN key = $1 THEN 0 ELSE failures - 1 END, \
                   window_started_at = CASE WHEN key = $1 THEN 0 ELSE window_started_at END \
                 WHERE key = $1 OR (key = $2 AND window_started_at = $3 AND failures > 0)",
            )
            .bind(cleared)
            .bind(back_key)
            .bind(back_window)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
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
