//! Consent, feedback, samples and dataset versions, implementing the
//! core's `CurationRepository`.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::ports::{CurationRepository, Feedback, NewDataset, RepoError, SampleCounts};
use mongars_core::training::model::{
    Dataset, DatasetItem, Sample, SampleSource, SampleStatus, Split,
};

#[derive(sqlx::FromRow)]
struct SampleRow {
    id: String,
    user_id: i64,
    source: String,
    turn_id: Option<String>,
    prompt: String,
    response: String,
    pii: String,
    status: String,
    created_at: DateTime<Utc>,
    reviewed_at: Option<DateTime<Utc>>,
}

impl From<SampleRow> for Sample {
    fn from(r: SampleRow) -> Self {
        Sample {
            id: r.id,
            user_id: r.user_id,
            source: SampleSource::parse(&r.source),
            turn_id: r.turn_id,
            prompt: r.prompt,
            response: r.response,
            pii: r
                .pii
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            status: SampleStatus::parse(&r.status),
            created_at: r.created_at,
            reviewed_at: r.reviewed_at,
        }
    }
}

const SAMPLE: &str = "SELECT id, user_id, source, turn_id, prompt, response, pii, status, \
     created_at, reviewed_at FROM training_samples";

#[derive(sqlx::FromRow)]
struct DatasetRow {
    id: String,
    version: i64,
    content_hash: String,
    seed: i64,
    held_out_share: f64,
    samples: i64,
    train: i64,
    held_out: i64,
    created_at: DateTime<Utc>,
}

impl From<DatasetRow> for Dataset {
    fn from(r: DatasetRow) -> Self {
        Dataset {
            id: r.id,
            version: r.version,
            content_hash: r.content_hash,
            seed: r.seed,
            held_out_share: r.held_out_share,
            samples: r.samples,
            train: r.train,
            held_out: r.held_out,
            created_at: r.created_at,
        }
    }
}

const DATASET: &str = "SELECT id, version, content_hash, seed, held_out_share, samples, train, \
     held_out, created_at FROM training_datasets";

#[derive(Clone)]
pub struct SqlCurationRepository {
    db: Database,
}

impl SqlCurationRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl CurationRepository for SqlCurationRepository {
    async fn consent(&self, user_id: i64) -> Result<bool, RepoError> {
        let v: Option<bool> = on_pool!(self.db.pool(), |p| {
            sqlx::query_scalar("SELECT training_consent FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(v.unwrap_or(false))
    }

    async fn set_consent(&self, user_id: i64, consent: bool) -> Result<u64, RepoError> {
        on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE users SET training_consent = $1 WHERE id = $2")
                .bind(consent)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            let mut removed = 0;
            if !consent {
                removed = sqlx::query("DELETE FROM training_samples WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        }
        .await)
        .map_err(repo_err)
    }

    async fn turn(
        &self,
        user_id: i64,
        turn_id: &str,
    ) -> Result<Option<(String, Option<String>)>, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "SELECT query, CASE WHEN status = 'complete' THEN response END \
                 FROM conversation_turns WHERE id = $1 AND user_id = $2",
            )
            .bind(turn_id)
            .bind(user_id)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)
    }

    async fn save_feedback(&self, f: &Feedback) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "INSERT INTO turn_feedback (turn_id, user_id, rating, correction, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (turn_id) DO UPDATE SET rating = excluded.rating, \
                 correction = excluded.correction, updated_at = excluded.updated_at",
            )
            .bind(&f.turn_id)
            .bind(f.user_id)
            .bind(f.rating.as_str())
            .bind(&f.correction)
            .bind(f.at)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn save_sample(&self, s: &Sample) -> Result<(), RepoError> {
        let pii = s.pii.join(",");
        on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            if let Some(turn) = &s.turn_id {
                sqlx::query("DELETE FROM training_samples WHERE turn_id = $1")
                    .bind(turn)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO training_samples (id, user_id, source, turn_id, prompt, response, \
                 pii, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&s.id)
            .bind(s.user_id)
            .bind(s.source.as_str())
            .bind(&s.turn_id)
            .bind(&s.prompt)
            .bind(&s.response)
            .bind(&pii)
            .bind(s.status.as_str())
            .bind(s.created_at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        }
        .await)
        .map_err(repo_err)
    }

    async fn remove_turn_sample(&self, user_id: i64, turn_id: &str) -> Result<bool, RepoError> {
        let n = on_pool!(self.db.pool(), |p| {
            sqlx::query("DELETE FROM training_samples WHERE turn_id = $1 AND user_id = $2")
                .bind(turn_id)
                .bind(user_id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        Ok(n > 0)
    }

    async fn samples(&self, status: SampleStatus, limit: u32) -> Result<Vec<Sample>, RepoError> {
        let rows: Vec<SampleRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SAMPLE} WHERE status = $1 ORDER BY created_at, id LIMIT $2"
            )))
            .bind(status.as_str())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Sample::from).collect())
    }

    async fn sample_counts(&self) -> Result<SampleCounts, RepoError> {
        let rows: Vec<(String, i64)> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as("SELECT status, COUNT(*) FROM training_samples GROUP BY status")
                .fetch_all(p)
                .await
        })
        .map_err(repo_err)?;
        let mut c = SampleCounts::default();
        for (status, n) in rows {
            let n = crate::bigint::from_db(n);
            match SampleStatus::parse(&status) {
                SampleStatus::Ready => c.ready = n,
                SampleStatus::Held => c.held = n,
                SampleStatus::Dropped => c.dropped = n,
            }
        }
        Ok(c)
    }

    async fn review(
        &self,
        id: &str,
        status: SampleStatus,
        by: i64,
        at: DateTime<Utc>,
    ) -> Result<Option<Sample>, RepoError> {
        let row: Option<SampleRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "UPDATE training_samples SET status = $1, reviewed_at = $2, reviewed_by = $3 \
                 WHERE id = $4 AND status = 'held' RETURNING id, user_id, source, turn_id, \
                 prompt, response, pii, status, created_at, reviewed_at",
            )
            .bind(status.as_str())
            .bind(at)
            .bind(by)
            .bind(id)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(Sample::from))
    }

    async fn dataset_candidates(&self) -> Result<Vec<Sample>, RepoError> {
        let rows: Vec<SampleRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "SELECT s.id, s.user_id, s.source, s.turn_id, s.prompt, s.response, s.pii, \
                 s.status, s.created_at, s.reviewed_at FROM training_samples s \
                 JOIN users u ON u.id = s.user_id \
                 WHERE s.status = 'ready' AND u.training_consent AND NOT u.disabled",
            )
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        // Byte order, whatever the database's collation.
        let mut out: Vec<Sample> = rows.into_iter().map(Sample::from).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn insert_dataset(&self, d: &NewDataset) -> Result<Dataset, RepoError> {
        let count = |s: Split| d.items.iter().filter(|i| i.split == s).count() as i64;
        let (train, held) = (count(Split::Train), count(Split::HeldOut));
        on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO training_datasets (id, version, content_hash, seed, held_out_share, \
                 samples, train, held_out, created_at, created_by) SELECT $1, \
                 COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9 \
                 FROM training_datasets",
            )
            .bind(&d.id)
            .bind(&d.content_hash)
            .bind(d.seed)
            .bind(d.held_out_share)
            .bind(d.items.len() as i64)
            .bind(train)
            .bind(held)
            .bind(d.created_at)
            .bind(d.created_by)
            .execute(&mut *tx)
            .await?;
            for it in &d.items {
                sqlx::query(
                    "INSERT INTO training_dataset_items (dataset_id, sample_id, user_id, split, \
                     prompt, response) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&d.id)
                .bind(&it.sample_id)
                .bind(it.user_id)
                .bind(it.split.as_str())
                .bind(&it.prompt)
                .bind(&it.response)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await
        }
        .await)
        .map_err(repo_err)?;
        self.dataset(&d.id)
            .await?
            .ok_or_else(|| RepoError::Other("dataset vanished after insert".into()))
    }

    async fn datasets(&self) -> Result<Vec<Dataset>, RepoError> {
        let rows: Vec<DatasetRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{DATASET} ORDER BY version DESC"
            )))
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Dataset::from).collect())
    }

    async fn dataset(&self, id: &str) -> Result<Option<Dataset>, RepoError> {
        let row: Option<DatasetRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{DATASET} WHERE id = $1")))
                .bind(id)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(row.map(Dataset::from))
    }

    async fn dataset_items(&self, id: &str) -> Result<Vec<DatasetItem>, RepoError> {
        let rows: Vec<(String, i64, String, String, String)> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "SELECT sample_id, user_id, split, prompt, response FROM training_dataset_items \
                 WHERE dataset_id = $1",
            )
            .bind(id)
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        let mut items: Vec<DatasetItem> = rows
            .into_iter()
            .map(
                |(sample_id, user_id, split, prompt, response)| DatasetItem {
                    sample_id,
                    user_id,
                    split: Split::parse(&split),
                    prompt,
                    response,
                },
            )
            .collect();
        // Byte order, as the content hash was taken.
        items.sort_by(|a, b| a.sample_id.cmp(&b.sample_id));
        Ok(items)
    }
}
