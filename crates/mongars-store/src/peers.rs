//! The registered peers, implementing the core's `PeerRepository`.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::domain::PeerRecord;
use mongars_core::ports::{PeerRepository, RepoError};

#[derive(sqlx::FromRow)]
struct PeerRow {
    url: String,
    fingerprint: String,
    created_at: DateTime<Utc>,
}

impl From<PeerRow> for PeerRecord {
    fn from(r: PeerRow) -> Self {
        PeerRecord {
            url: r.url,
            fingerprint: r.fingerprint,
            created_at: r.created_at,
        }
    }
}

#[derive(Clone)]
pub struct SqlPeerRepository {
    db: Database,
}

impl SqlPeerRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl PeerRepository for SqlPeerRepository {
    async fn list(&self) -> Result<Vec<PeerRecord>, RepoError> {
        let rows: Vec<PeerRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as("SELECT url, fingerprint, created_at FROM peers ORDER BY url")
                .fetch_all(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn upsert(&self, peer: &PeerRecord) -> Result<PeerRecord, RepoError> {
        let row: PeerRow = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "INSERT INTO peers (url, fingerprint, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (url) DO UPDATE SET fingerprint = $2, updated_at = $3 \
                 RETURNING url, fingerprint, created_at",
            )
            .bind(&peer.url)
            .bind(&peer.fingerprint)
            .bind(peer.created_at)
            .fetch_one(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.into())
    }

    async fn remove(&self, url: &str) -> Result<bool, RepoError> {
        let done = on_pool!(self.db.pool(), |p| {
            sqlx::query("DELETE FROM peers WHERE url = $1")
                .bind(url)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        Ok(done > 0)
    }
}
