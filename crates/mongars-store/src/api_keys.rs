//! API keys, implementing the core's `ApiKeyRepository`: hashes only.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::domain::{ApiKey, NewApiKey};
use mongars_core::ports::{ApiKeyRepository, RepoError};

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    user_id: i64,
    name: String,
    prefix: String,
    token_version: i64,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

impl From<KeyRow> for ApiKey {
    fn from(r: KeyRow) -> Self {
        ApiKey {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            version: r.token_version,
        }
    }
}

const SELECT: &str = "SELECT id, user_id, name, prefix, token_version, created_at, \
     last_used_at, expires_at FROM api_keys";

#[derive(Clone)]
pub struct SqlApiKeyRepository {
    db: Database,
}

impl SqlApiKeyRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ApiKeyRepository for SqlApiKeyRepository {
    async fn insert(&self, new: &NewApiKey) -> Result<(), RepoError> {
        let k = &new.key;
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, token_version, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&k.id)
            .bind(k.user_id)
            .bind(&k.name)
            .bind(&k.prefix)
            .bind(&new.hash)
            .bind(k.version)
            .bind(k.created_at)
            .bind(k.expires_at)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn list(&self, user_id: i64) -> Result<Vec<ApiKey>, RepoError> {
        let rows: Vec<KeyRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"
            )))
            .bind(user_id)
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    async fn find_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, RepoError> {
        let row: Option<KeyRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE key_hash = $1 AND revoked_at IS NULL"
            )))
            .bind(hash)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(ApiKey::from))
    }

    async fn get(&self, user_id: i64, id: &str) -> Result<Option<ApiKey>, RepoError> {
        let row: Option<KeyRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
            )))
            .bind(id)
            .bind(user_id)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(ApiKey::from))
    }

    async fn revoke(&self, user_id: i64, id: &str, at: DateTime<Utc>) -> Result<bool, RepoError> {
        let n = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $1 \
                 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(id)
            .bind(user_id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        Ok(n > 0)
    }

    async fn touch(&self, id: &str, at: DateTime<Utc>) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(p)
                .await
                .map(|_| ())
        })
        .map_err(repo_err)
    }
}
