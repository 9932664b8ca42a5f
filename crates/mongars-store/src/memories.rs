//! Long-term memories, implementing the core's `MemoryRepository` (the
//! style profiles it also stores are in `profiles.rs`). Vectors are stored as
//! little-endian f32 blobs (BLOB on SQLite, BYTEA on PostgreSQL): search runs
//! in the core's in-process index, so no vector extension is needed.

use crate::bigint::from_db;
use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::domain::{
    Memory, MemoryKind, MemoryUpdate, MemoryVector, NewMemory, vector_from_bytes, vector_to_bytes,
};
use mongars_core::ports::{ForgetReport, MemoryRepository, RepoError};

const COLUMNS: &str = "id, user_id, kind, text, slot, source, mentions, created_at, updated_at, \
                       expires_at, superseded_by";
/// Live: not replaced and not expired at `$N` (the caller binds `now`).
fn live(now_param: u8) -> String {
    format!("superseded_by IS NULL AND (expires_at IS NULL OR expires_at > ${now_param})")
}

/// The live memories of user `$1` (`$2` now) among the ids `$3...`, `n` of
/// them. By the primary key: `+user_id` keeps SQLite off the user index,
/// which it otherwise picks and which walks every memory of the user (the
/// cost of a recall grew with the memories kept).
fn get_many_sql(n: usize) -> String {
    let marks: Vec<String> = (0..n).map(|i| format!("${}", i + 3)).collect();
    format!(
        "SELECT {COLUMNS} FROM memories WHERE +user_id = $1 AND {} AND id IN ({})",
        live(2),
        marks.join(", ")
    )
}

const BUMP: &str = "INSERT INTO memory_revisions (user_id, revision) VALUES ($1, 1) \
                    ON CONFLICT (user_id) DO UPDATE SET revision = memory_revisions.revision + 1 \
                    RETURNING revision";

/// In one transaction on pool `$p`: run the query `$q`; when it changed a
/// row, bump the user's revision and answer it, else `None`.
macro_rules! change_and_bump {
    ($p:expr, $user:expr, $q:expr) => {
        async {
            let mut tx = $p.begin().await?;
            if $q.execute(&mut *tx).await?.rows_affected() == 0 {
                return Ok::<_, sqlx::Error>(None);
            }
            let r: i64 = sqlx::query_scalar(BUMP)
                .bind($user)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(from_db(r)))
        }
        .await
    };
}

#[derive(sqlx::FromRow)]
struct MemoryRow {
    id: String,
    user_id: i64,
    kind: String,
    text: String,
    slot: Option<String>,
    source: String,
    mentions: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    superseded_by: Option<String>,
}

/// A memory as its user's search index keeps it.
#[derive(sqlx::FromRow)]
struct VectorRow {
    id: String,
    kind: String,
    embedding: Vec<u8>,
    text: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

impl From<MemoryRow> for Memory {
    fn from(r: MemoryRow) -> Self {
        Memory {
            id: r.id,
            user_id: r.user_id,
            kind: MemoryKind::from_stored(&r.kind),
            text: r.text,
            slot: r.slot,
            source: r.source,
            mentions: r.mentions,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
            superseded_by: r.superseded_by,
        }
    }
}

#[derive(Clone)]
pub struct SqlMemoryRepository {
    pub(crate) db: Database,
}

impl SqlMemoryRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl MemoryRepository for SqlMemoryRepository {
    async fn insert(&self, m: NewMemory) -> Result<u64, RepoError> {
        let blob = vector_to_bytes(&m.embedding);
        on_pool!(self.db.pool(), |p| change_and_bump!(
            p,
            m.user_id,
            sqlx::query(
                "INSERT INTO memories (id, user_id, kind, text, slot, source, embedding, \
                 created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
            )
            .bind(&m.id)
            .bind(m.user_id)
            .bind(m.kind.as_str())
            .bind(&m.text)
            .bind(&m.slot)
            .bind(&m.source)
            .bind(&blob)
            .bind(m.at)
            .bind(m.expires_at)
        ))
        .map_err(repo_err)?
        .ok_or_else(|| RepoError::Other("the insert changed no row".into()))
    }

    async fn update(
        &self,
        user_id: i64,
        id: &str,
        u: MemoryUpdate,
    ) -> Result<Option<u64>, RepoError> {
        let blob = vector_to_bytes(&u.embedding);
        let mention = i64::from(u.mentioned);
        on_pool!(self.db.pool(), |p| change_and_bump!(
            p,
            user_id,
            sqlx::query(
                "UPDATE memories SET text = $1, slot = $2, source = $3, embedding = $4, \
                 updated_at = $5, mentions = mentions + $6 \
                 WHERE id = $7 AND user_id = $8 AND superseded_by IS NULL",
            )
            .bind(&u.text)
            .bind(&u.slot)
            .bind(&u.source)
            .bind(&blob)
            .bind(u.at)
            .bind(mention)
            .bind(id)
            .bind(user_id)
        ))
        .map_err(repo_err)
    }

    async fn supersede(
        &self,
        user_id: i64,
        old_id: &str,
        new_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, RepoError> {
        on_pool!(self.db.pool(), |p| change_and_bump!(
            p,
            user_id,
            sqlx::query(
                "UPDATE memories SET superseded_by = $1, superseded_at = $2 \
                 WHERE id = $3 AND user_id = $4 AND superseded_by IS NULL",
            )
            .bind(new_id)
            .bind(at)
            .bind(old_id)
            .bind(user_id)
        ))
        .map_err(repo_err)
    }

    async fn delete(&self, user_id: i64, id: &str) -> Result<Option<u64>, RepoError> {
        // Facts it had replaced point nowhere now; they stay replaced.
        on_pool!(self.db.pool(), |p| change_and_bump!(
            p,
            user_id,
            sqlx::query("DELETE FROM memories WHERE id = $1 AND user_id = $2")
                .bind(id)
                .bind(user_id)
        ))
        .map_err(repo_err)
    }

    async fn get(
        &self,
        user_id: i64,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Memory>, RepoError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM memories WHERE id = $1 AND user_id = $2 AND {}",
            live(3)
        );
        let row: Option<MemoryRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .bind(user_id)
                .bind(now)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(row.map(Memory::from))
    }

    async fn get_many(
        &self,
        user_id: i64,
        ids: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<Memory>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = get_many_sql(ids.len());
        let rows: Vec<MemoryRow> = on_pool!(self.db.pool(), |p| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .bind(now);
            for id in ids {
                q = q.bind(id);
            }
            q.fetch_all(p).await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Memory::from).collect())
    }

    async fn list(
        &self,
        user_id: i64,
        kind: MemoryKind,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Memory>, RepoError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM memories WHERE user_id = $1 AND kind = $2 AND {} \
             ORDER BY updated_at DESC, id DESC LIMIT $4",
            live(3)
        );
        let rows: Vec<MemoryRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .bind(kind.as_str())
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Memory::from).collect())
    }

    async fn with_slot(
        &self,
        user_id: i64,
        slot: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Memory>, RepoError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM memories WHERE user_id = $1 AND slot = $2 AND kind = 'fact' \
             AND {} ORDER BY updated_at DESC",
            live(3)
        );
        let rows: Vec<MemoryRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .bind(slot)
                .bind(now)
                .fetch_all(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Memory::from).collect())
    }

    async fn revision(&self, user_id: i64) -> Result<u64, RepoError> {
        let r: Option<i64> = on_pool!(self.db.pool(), |p| {
            sqlx::query_scalar("SELECT revision FROM memory_revisions WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(r.map_or(0, from_db))
    }

    async fn vectors(
        &self,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<MemoryVector>), RepoError> {
        let sql = format!(
            "SELECT id, kind, embedding, text, created_at, expires_at FROM memories \
             WHERE user_id = $1 AND {}",
            live(2)
        );
        // One transaction, so the revision matches the rows read.
        let (r, rows): (Option<i64>, Vec<VectorRow>) = on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            let r: Option<i64> =
                sqlx::query_scalar("SELECT revision FROM memory_revisions WHERE user_id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(user_id)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((r, rows))
        }
        .await)
        .map_err(repo_err)?;
        let vectors = rows
            .into_iter()
            .filter_map(|row| {
                vector_from_bytes(&row.embedding).map(|embedding| MemoryVector {
                    id: row.id,
                    kind: MemoryKind::from_stored(&row.kind),
                    embedding,
                    text: row.text,
                    created_at: row.created_at,
                    expires_at: row.expires_at,
                })
            })
            .collect();
        Ok((r.map_or(0, from_db), vectors))
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, RepoError> {
        on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            let users: Vec<i64> = sqlx::query_scalar(
                "SELECT DISTINCT user_id FROM memories WHERE expires_at IS NOT NULL AND expires_at <= $1",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let n = sqlx::query(
                "DELETE FROM memories WHERE expires_at IS NOT NULL AND expires_at <= $1",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for u in users {
                sqlx::query(BUMP).bind(u).fetch_one(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        }
        .await)
        .map_err(repo_err)
    }

    async fn forget_user(&self, user_id: i64) -> Result<ForgetReport, RepoError> {
        on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            let memories = sqlx::query("DELETE FROM memories WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let turns = sqlx::query("DELETE FROM conversation_turns WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let profile = sqlx::query("DELETE FROM user_profiles WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            // What training kept of the user: their samples, ratings and
            // the copies in dataset versions.
            let mut training = 0;
            for table in [
                "training_samples",
                "turn_feedback",
                "training_dataset_items",
            ] {
                training += sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DELETE FROM {table} WHERE user_id = $1"
                )))
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            sqlx::query(BUMP).bind(user_id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ForgetReport {
                turns,
                memories,
                profile,
                training,
            })
        }
        .await)
        .map_err(repo_err)
    }
}

#[cfg(test)]
mod plans {
    use super::*;
    use crate::plans::plan;

    #[tokio::test]
    async fn memories_recalled_by_id_are_read_by_the_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testing::fresh_sqlite(dir.path()).await;
        for n in [1, 6] {
            let sql = get_many_sql(n);
            let plan = plan(&db, &sql, 2 + n).await;
            assert!(
                plan.contains("sqlite_autoindex_memories_1 (id=?)"),
                "{sql}\nplan:\n{plan}"
            );
            assert!(!plan.contains("memories_user"), "{sql}\nplan:\n{plan}");
        }
    }
}
