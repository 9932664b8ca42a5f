//! Conversation turns, implementing the core's `TurnRepository`.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::domain::{NewTurn, SpeechTurn, Turn, TurnCompletion, TurnStatus};
use mongars_core::ports::{RepoError, TurnRepository};

#[derive(sqlx::FromRow)]
struct TurnRow {
    id: String,
    user_id: i64,
    session_id: Option<String>,
    query: String,
    response: Option<String>,
    status: String,
    error_code: Option<String>,
    model: Option<String>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    confidence: Option<f64>,
    speech_turn: Option<String>,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

impl From<TurnRow> for Turn {
    fn from(r: TurnRow) -> Self {
        Turn {
            id: r.id,
            user_id: r.user_id,
            session_id: r.session_id,
            query: r.query,
            response: r.response,
            status: TurnStatus::from_stored(&r.status),
            error_code: r.error_code,
            model: r.model,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            confidence: r.confidence,
            speech_turn: r
                .speech_turn
                .and_then(|s| serde_json::from_str::<SpeechTurn>(&s).ok()),
            created_at: r.created_at,
            completed_at: r.completed_at,
        }
    }
}

const SELECT: &str = "SELECT id, user_id, session_id, query, response, status, error_code, model, \
    prompt_tokens, completion_tokens, confidence, speech_turn, created_at, completed_at \
    FROM conversation_turns";

#[derive(Clone)]
pub struct SqlTurnRepository {
    db: Database,
}

impl SqlTurnRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[async_trait]
impl TurnRepository for SqlTurnRepository {
    async fn start(&self, t: NewTurn) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "INSERT INTO conversation_turns (id, user_id, session_id, query, status, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5)",
            )
            .bind(&t.id)
            .bind(t.user_id)
            .bind(&t.session_id)
            .bind(&t.query)
            .bind(t.created_at)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn complete(&self, id: &str, c: &TurnCompletion) -> Result<(), RepoError> {
        let speech =
            serde_json::to_string(&c.speech_turn).map_err(|e| RepoError::Other(e.to_string()))?;
        let rows = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE conversation_turns SET response = $1, status = 'complete', model = $2, \
                 prompt_tokens = $3, completion_tokens = $4, confidence = $5, ttft_ms = $6, \
                 generation_ms = $7, total_ms = $8, speech_turn = $9, completed_at = $10 \
                 WHERE id = $11 AND status = 'pending'",
            )
            .bind(&c.response)
            .bind(&c.model)
            .bind(i64::from(c.prompt_tokens))
            .bind(i64::from(c.completion_tokens))
            .bind(c.confidence)
            .bind(c.ttft_ms as i64)
            .bind(c.generation_ms as i64)
            .bind(c.total_ms as i64)
            .bind(speech)
            .bind(c.completed_at)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        if rows == 0 {
            return Err(RepoError::Other(format!("turn {id} is not pending")));
        }
        Ok(())
    }

    async fn fail(&self, id: &str, error_code: &str) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE conversation_turns SET status = 'failed', error_code = $1, completed_at = $2 \
                 WHERE id = $3 AND status = 'pending'",
            )
            .bind(error_code)
            .bind(Utc::now())
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn count_complete(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<u64, RepoError> {
        let n: i64 = match session_id {
            Some(session) => on_pool!(self.db.pool(), |p| {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM conversation_turns \
                     WHERE user_id = $1 AND session_id = $2 AND status = 'complete'",
                )
                .bind(user_id)
                .bind(session)
                .fetch_one(p)
                .await
            }),
            None => on_pool!(self.db.pool(), |p| {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM conversation_turns WHERE user_id = $1 AND status = 'complete'",
                )
                .bind(user_id)
                .fetch_one(p)
                .await
            }),
        }
        .map_err(repo_err)?;
        Ok(n.max(0) as u64)
    }

    async fn recent(
        &self,
        user_id: i64,
        session_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Turn>, RepoError> {
        let limit = i64::from(limit);
        let rows: Vec<TurnRow> = match session_id {
            Some(session) => on_pool!(self.db.pool(), |p| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE user_id = $1 AND session_id = $2 AND status = 'complete' \
                     ORDER BY created_at DESC, id DESC LIMIT $3"
                )))
                .bind(user_id)
                .bind(session)
                .bind(limit)
                .fetch_all(p)
                .await
            }),
            None => on_pool!(self.db.pool(), |p| {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "{SELECT} WHERE user_id = $1 AND status = 'complete' \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                )))
                .bind(user_id)
                .bind(limit)
                .fetch_all(p)
                .await
            }),
        }
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Turn::from).collect())
    }
}

/// Every turn of a user whatever its state, oldest first (for tests and
/// operators checking what was stored).
pub async fn all_turns(db: &Database, user_id: i64) -> Result<Vec<Turn>, RepoError> {
    let rows: Vec<TurnRow> = on_pool!(db.pool(), |p| {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE user_id = $1 ORDER BY created_at, id"
        )))
        .bind(user_id)
        .fetch_all(p)
        .await
    })
    .map_err(repo_err)?;
    Ok(rows.into_iter().map(Turn::from).collect())
}
