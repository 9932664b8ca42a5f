//! Training runs, implementing the core's `RunRepository`.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::ports::{RepoError, RunRepository};
use mongars_core::training::model::{RunObjective, RunStatus, TrainingRun};

#[derive(sqlx::FromRow)]
struct RunRow {
    id: String,
    dataset_id: String,
    objective: String,
    status: String,
    steps_total: i64,
    steps_done: i64,
    tokens: i64,
    loss: Option<f64>,
    pauses: i64,
    cpu_seconds: f64,
    energy_wh: f64,
    figures: Option<String>,
    error_code: Option<String>,
    adapter_id: Option<String>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<RunRow> for TrainingRun {
    fn from(r: RunRow) -> Self {
        TrainingRun {
            id: r.id,
            dataset_id: r.dataset_id,
            objective: RunObjective::parse(&r.objective),
            status: RunStatus::parse(&r.status),
            steps_total: r.steps_total,
            steps_done: r.steps_done,
            tokens: r.tokens,
            loss: r.loss,
            pauses: r.pauses,
            cpu_seconds: r.cpu_seconds,
            energy_wh: r.energy_wh,
            figures: r
                .figures
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or(serde_json::Value::Null),
            error_code: r.error_code,
            adapter_id: r.adapter_id,
            created_at: r.created_at,
            started_at: r.started_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
        }
    }
}

const SELECT: &str = "SELECT id, dataset_id, objective, status, steps_total, steps_done, \
     tokens, loss, pauses, cpu_seconds, energy_wh, figures, error_code, adapter_id, \
     created_at, started_at, updated_at, finished_at FROM training_runs";

#[derive(Clone)]
pub struct SqlRunRepository {
    db: Database,
}

impl SqlRunRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

fn figures(run: &TrainingRun) -> Option<String> {
    (!run.figures.is_null()).then(|| run.figures.to_string())
}

#[async_trait]
impl RunRepository for SqlRunRepository {
    async fn insert(&self, run: &TrainingRun) -> Result<(), RepoError> {
        let figures = figures(run);
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "INSERT INTO training_runs (id, dataset_id, objective, status, steps_total, \
                 figures, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&run.id)
            .bind(&run.dataset_id)
            .bind(run.objective.as_str())
            .bind(run.status.as_str())
            .bind(run.steps_total)
            .bind(&figures)
            .bind(run.created_at)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn get(&self, id: &str) -> Result<Option<TrainingRun>, RepoError> {
        let row: Option<RunRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
                .bind(id)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(row.map(TrainingRun::from))
    }

    async fn list(&self, limit: u32) -> Result<Vec<TrainingRun>, RepoError> {
        let rows: Vec<RunRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} ORDER BY created_at DESC, id LIMIT $1"
            )))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(TrainingRun::from).collect())
    }

    async fn next_open(&self) -> Result<Option<TrainingRun>, RepoError> {
        let row: Option<RunRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "{SELECT} WHERE status IN ('queued', 'running', 'paused') \
                 ORDER BY created_at, id LIMIT 1"
            )))
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(TrainingRun::from))
    }

    async fn claim(
        &self,
        id: &str,
        at: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let n = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE training_runs SET status = 'running', updated_at = $1, \
                 started_at = COALESCE(started_at, $1) WHERE id = $2 AND \
                 (status IN ('queued', 'paused') OR (status = 'running' AND updated_at < $3))",
            )
            .bind(at)
            .bind(id)
            .bind(stale_before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        Ok(n > 0)
    }

    async fn save(&self, run: &TrainingRun) -> Result<(), RepoError> {
        let figures = figures(run);
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE training_runs SET status = $1, steps_done = $2, tokens = $3, loss = $4, \
                 pauses = $5, cpu_seconds = $6, energy_wh = $7, figures = $8, error_code = $9, \
                 adapter_id = $10, started_at = $11, updated_at = $12, finished_at = $13 \
                 WHERE id = $14",
            )
            .bind(run.status.as_str())
            .bind(run.steps_done)
            .bind(run.tokens)
            .bind(run.loss)
            .bind(run.pauses)
            .bind(run.cpu_seconds)
            .bind(run.energy_wh)
            .bind(&figures)
            .bind(&run.error_code)
            .bind(&run.adapter_id)
            .bind(run.started_at)
            .bind(run.updated_at)
            .bind(run.finished_at)
            .bind(&run.id)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }
}
