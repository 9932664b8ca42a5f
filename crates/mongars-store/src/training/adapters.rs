//! The adapter registry and its activation history, implementing the
//! core's `AdapterRepository`. Activation and rollback are each one
//! transaction, so every replica reads one answer to "which is active".

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::ports::{AdapterRepository, RepoError};
use mongars_core::training::model::{Adapter, AdapterStatus};

#[derive(sqlx::FromRow)]
struct AdapterRow {
    id: String,
    version: i64,
    status: String,
    file: String,
    sha256: String,
    base_model_sha256: String,
    dataset_hash: String,
    run_id: Option<String>,
    metrics: String,
    created_at: DateTime<Utc>,
    approved_at: Option<DateTime<Utc>>,
    activated_at: Option<DateTime<Utc>>,
}

impl From<AdapterRow> for Adapter {
    fn from(r: AdapterRow) -> Self {
        Adapter {
            id: r.id,
            version: r.version,
            status: AdapterStatus::parse(&r.status),
            file: r.file,
            sha256: r.sha256,
            base_model_sha256: r.base_model_sha256,
            dataset_hash: r.dataset_hash,
            run_id: r.run_id,
            metrics: serde_json::from_str(&r.metrics).unwrap_or(serde_json::Value::Null),
            created_at: r.created_at,
            approved_at: r.approved_at,
            activated_at: r.activated_at,
        }
    }
}

const SELECT: &str = "SELECT id, version, status, file, sha256, base_model_sha256, \
     dataset_hash, run_id, metrics, created_at, approved_at, activated_at FROM adapters";

#[derive(Clone)]
pub struct SqlAdapterRepository {
    db: Database,
}

impl SqlAdapterRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl AdapterRepository for SqlAdapterRepository {
    async fn insert(&self, a: &Adapter) -> Result<Adapter, RepoError> {
        let metrics = a.metrics.to_string();
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "INSERT INTO adapters (id, version, status, file, sha256, base_model_sha256, \
                 dataset_hash, run_id, metrics, created_at) SELECT $1, \
                 COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 FROM adapters",
            )
            .bind(&a.id)
            .bind(a.status.as_str())
            .bind(&a.file)
            .bind(&a.sha256)
            .bind(&a.base_model_sha256)
            .bind(&a.dataset_hash)
            .bind(&a.run_id)
            .bind(&metrics)
            .bind(a.created_at)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)?;
        self.get(&a.id)
            .await?
            .ok_or_else(|| RepoError::Other("adapter vanished after insert".into()))
    }

    async fn list(&self) -> Result<Vec<Adapter>, RepoError> {
        let rows: Vec<AdapterRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} ORDER BY version DESC"
            )))
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Adapter::from).collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Adapter>, RepoError> {
        let row: Option<AdapterRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
                .bind(id)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(row.map(Adapter::from))
    }

    async fn approve(&self, id: &str, by: i64, at: DateTime<Utc>) -> Result<bool, RepoError> {
        let n = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE adapters SET status = 'approved', approved_at = $1, approved_by = $2 \
                 WHERE id = $3 AND status = 'candidate'",
            )
            .bind(at)
            .bind(by)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        Ok(n > 0)
    }

    async fn reject(&self, id: &str) -> Result<bool, RepoError> {
        let n = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE adapters SET status = 'rejected' WHERE id = $1 AND status <> 'active'",
            )
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        Ok(n > 0)
    }

    async fn activate(&self, id: &str, by: i64, at: DateTime<Utc>) -> Result<bool, RepoError> {
        on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            // The target first: on SQLite this takes the write lock before
            // anything is read, so two activations cannot interleave.
            let n = sqlx::query(
                "UPDATE adapters SET status = 'active', activated_at = $1 \
                 WHERE id = $2 AND status IN ('approved', 'retired', 'active')",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Ok::<_, sqlx::Error>(false);
            }
            sqlx::query(
                "UPDATE adapters SET status = 'retired' WHERE status = 'active' AND id <> $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO adapter_activations (adapter_id, at, by_user) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(at)
            .bind(by)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        }
        .await)
        .map_err(repo_err)
    }

    async fn rollback(&self, at: DateTime<Utc>) -> Result<Option<Option<Adapter>>, RepoError> {
        let target: Option<Option<String>> = on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            // Mark the latest activation undone first (the write lock, as above).
            let undone: Option<(i64, Option<String>)> = sqlx::query_as(
                "UPDATE adapter_activations SET undone_at = $1 WHERE seq = \
                 (SELECT MAX(seq) FROM adapter_activations WHERE undone_at IS NULL) \
                 RETURNING seq, adapter_id",
            )
            .bind(at)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((seq, current)) = undone else {
                return Ok::<_, sqlx::Error>(None);
            };
            if let Some(current) = &current {
                sqlx::query("UPDATE adapters SET status = 'retired' WHERE id = $1")
                    .bind(current)
                    .execute(&mut *tx)
                    .await?;
            }
            let before: Option<Option<String>> = sqlx::query_scalar(
                "SELECT adapter_id FROM adapter_activations \
                 WHERE undone_at IS NULL AND seq < $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?;
            let before = before.flatten();
            if let Some(b) = &before {
                sqlx::query(
                    "UPDATE adapters SET status = 'active', activated_at = $1 WHERE id = $2",
                )
                .bind(at)
                .bind(b)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(Some(before))
        }
        .await)
        .map_err(repo_err)?;
        match target {
            None => Ok(None),
            Some(None) => Ok(Some(None)),
            Some(Some(id)) => Ok(Some(self.get(&id).await?)),
        }
    }

    async fn active(&self) -> Result<Option<Adapter>, RepoError> {
        let row: Option<AdapterRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE status = 'active' ORDER BY activated_at DESC LIMIT 1"
            )))
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(Adapter::from))
    }
}
