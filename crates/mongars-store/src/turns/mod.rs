//! Conversation turns, implementing the core's `TurnRepository`.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use crate::profiles::save_profile;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::domain::{NewTurn, NewestOrdinal, SpeechTurn, Turn, TurnCompletion, TurnStatus};
use mongars_core::ports::{ProfileSave, RepoError, TurnRepository};

#[cfg(test)]
mod indexes;
mod working;

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
    wm_expires_at: Option<DateTime<Utc>>,
    prompt_note: Option<String>,
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
            expires_at: r.wm_expires_at,
            note: r.prompt_note,
        }
    }
}

const SELECT: &str = "SELECT id, user_id, session_id, query, response, status, error_code, model, \
    prompt_tokens, completion_tokens, confidence, speech_turn, created_at, completed_at, wm_expires_at, prompt_note \
    FROM conversation_turns";

/// A turn's completion: its reply, figures and place in working memory.
/// The indexes holding any column it sets are the ones a completion
/// rewrites (a test keeps them to the three that must change).
const COMPLETE: &str = "UPDATE conversation_turns SET response = $1, status = 'complete', \
     model = $2, prompt_tokens = $3, completion_tokens = $4, confidence = $5, ttft_ms = $6, \
     generation_ms = $7, total_ms = $8, speech_turn = $9, completed_at = $10, \
     wm_expires_at = $11 WHERE id = $12 AND status = 'pending'";

#[derive(Clone)]
pub struct SqlTurnRepository {
    db: Database,
}

impl SqlTurnRepository {
    /// One of a pair of `COUNT(*)` statements (the user's, or the user's in
    /// a session), bound in order: user, session when given, `now` when
    /// given.
    async fn count(
        &self,
        (all, in_session): (&'static str, &'static str),
        user_id: i64,
        session_id: Option<&str>,
        now: Option<DateTime<Utc>>,
    ) -> Result<u64, RepoError> {
        let sql = if session_id.is_some() {
            in_session
        } else {
            all
        };
        let n: i64 = on_pool!(self.db.pool(), |p| {
            let mut q = sqlx::query_scalar(sql).bind(user_id);
            if let Some(session) = session_id {
                q = q.bind(session);
            }
            if let Some(now) = now {
                q = q.bind(now);
            }
            q.fetch_one(p).await
        })
        .map_err(repo_err)?;
        Ok(crate::bigint::from_db(n))
    }

    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// How many complete turns of the user (in `session_id` when given) are
    /// in working memory at `now`. No chat needs it (a turn's place in
    /// working memory comes from its ordinals); tests and operators check
    /// the bound with it.
    pub async fn count_complete(
        &self,
        user_id: i64,
        session_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let sql = (working::COUNT, working::COUNT_IN_SESSION);
        self.count(sql, user_id, session_id, Some(now)).await
    }

    /// How many turns are in each status (`doctor`, tests), with the error
    /// codes of failed ones: `(status, error_code, count)`.
    pub async fn count_by_status(&self) -> Result<Vec<(String, Option<String>, i64)>, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "SELECT status, error_code, COUNT(*) FROM conversation_turns \
                 GROUP BY status, error_code ORDER BY status, error_code",
            )
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)
    }
}

/// Store a turn's reply on an executor: the rows changed (0: the turn is
/// not pending).
macro_rules! complete {
    ($e:expr, $id:expr, $c:expr, $speech:expr) => {{
        let c: &TurnCompletion = $c;
        sqlx::query(COMPLETE)
            .bind(&c.response)
            .bind(&c.model)
            .bind(i64::from(c.prompt_tokens))
            .bind(i64::from(c.completion_tokens))
            .bind(c.confidence)
            .bind(c.ttft_ms as i64)
            .bind(c.generation_ms as i64)
            .bind(c.total_ms as i64)
            .bind(&$speech)
            .bind(c.completed_at)
            .bind(c.working_until)
            .bind($id)
            .execute($e)
            .await
            .map(|r| r.rows_affected())
    }};
}

fn speech_json(c: &TurnCompletion) -> Result<String, RepoError> {
    serde_json::to_string(&c.speech_turn).map_err(|e| RepoError::Other(e.to_string()))
}

fn not_pending(id: &str) -> RepoError {
    RepoError::Other(format!("turn {id} is not pending"))
}

#[async_trait]
impl TurnRepository for SqlTurnRepository {
    async fn start(&self, t: NewTurn) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "INSERT INTO conversation_turns \
                 (id, user_id, session_id, query, status, created_at, owner, ordinal, \
                  session_ordinal, context_trace, prompt_note) \
                 VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10)",
            )
            .bind(&t.id)
            .bind(t.user_id)
            .bind(&t.session_id)
            .bind(&t.query)
            .bind(t.created_at)
            .bind(&t.owner)
            .bind(stored_ordinal(t.ordinals.user))
            .bind(stored_ordinal(t.ordinals.session))
            .bind(&t.trace)
            .bind(&t.note)
            .execute(p)
            .await
            .map(|_| ())
        })
        .map_err(repo_err)
    }

    async fn complete(&self, id: &str, c: &TurnCompletion) -> Result<(), RepoError> {
        let speech = speech_json(c)?;
        let rows = on_pool!(self.db.pool(), |p| complete!(p, id, c, speech)).map_err(repo_err)?;
        if rows == 0 {
            return Err(not_pending(id));
        }
        Ok(())
    }

    async fn complete_with_profile(
        &self,
        id: &str,
        c: &TurnCompletion,
        profile: &ProfileSave,
    ) -> Result<bool, RepoError> {
        let speech = speech_json(c)?;
        let done: Option<bool> = on_pool!(self.db.pool(), |p| async {
            let mut tx = p.begin().await?;
            if complete!(&mut *tx, id, c, speech)? == 0 {
                return Ok::<_, sqlx::Error>(None);
            }
            let saved = save_profile!(&mut *tx, profile)? == 1;
            tx.commit().await?;
            Ok(Some(saved))
        }
        .await)
        .map_err(repo_err)?;
        done.ok_or_else(|| not_pending(id))
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

    async fn pending_owners(&self) -> Result<Vec<String>, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query_scalar(
                "SELECT DISTINCT owner FROM conversation_turns \
                 WHERE status = 'pending' AND owner IS NOT NULL",
            )
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)
    }

    async fn fail_pending_of(&self, owner: &str, error_code: &str) -> Result<u64, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE conversation_turns SET status = 'failed', error_code = $1, completed_at = $2 \
                 WHERE status = 'pending' AND owner = $3",
            )
            .bind(error_code)
            .bind(Utc::now())
            .bind(owner)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)
    }

    async fn fail_pending_before(
        &self,
        before: DateTime<Utc>,
        error_code: &str,
    ) -> Result<u64, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE conversation_turns SET status = 'failed', error_code = $1, completed_at = $2 \
                 WHERE status = 'pending' AND created_at < $3",
            )
            .bind(error_code)
            .bind(Utc::now())
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)
    }

    async fn count_history(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<u64, RepoError> {
        let sql = (working::HISTORY, working::HISTORY_IN_SESSION);
        self.count(sql, user_id, session_id, None).await
    }

    async fn newest_ordinals(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<(NewestOrdinal, NewestOrdinal), RepoError> {
        let (user, session): (Option<i64>, Option<i64>) = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(working::NEWEST_ORDINALS)
                .bind(user_id)
                .bind(session_id)
                .fetch_one(p)
                .await
        })
        .map_err(repo_err)?;
        Ok((newest(user), newest(session)))
    }

    async fn recent(
        &self,
        user_id: i64,
        session_id: Option<&str>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Vec<Turn>, RepoError> {
        let limit = i64::from(limit);
        let rows: Vec<TurnRow> = match session_id {
            Some(session) => on_pool!(self.db.pool(), |p| {
                sqlx::query_as(sqlx::AssertSqlSafe(working::recent(SELECT, true)))
                    .bind(user_id)
                    .bind(session)
                    .bind(limit)
                    .bind(now)
                    .fetch_all(p)
                    .await
            }),
            None => on_pool!(self.db.pool(), |p| {
                sqlx::query_as(sqlx::AssertSqlSafe(working::recent(SELECT, false)))
                    .bind(user_id)
                    .bind(limit)
                    .bind(now)
                    .fetch_all(p)
                    .await
            }),
        }
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(Turn::from).collect())
    }

    async fn trim_working(&self, user_id: i64, keep: u32) -> Result<u64, RepoError> {
        let sql = match self.db.pool() {
            crate::db::Pool::Sqlite(_) => working::trim(working::SQLITE_NO_LIMIT),
            crate::db::Pool::Postgres(_) => working::trim(working::POSTGRES_NO_LIMIT),
        };
        on_pool!(self.db.pool(), |p| {
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(user_id)
                .bind(i64::from(keep))
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(repo_err)
    }

    async fn purge_working(&self, now: DateTime<Utc>) -> Result<u64, RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query(working::PURGE)
                .bind(now)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(repo_err)
    }

    async fn trace(&self, user_id: i64, id: &str) -> Result<Option<Option<String>>, RepoError> {
        let row: Option<(Option<String>,)> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(
                "SELECT context_trace FROM conversation_turns WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user_id)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(|r| r.0))
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

/// An ordinal as stored: `BIGINT`, NULL when nobody counted.
fn stored_ordinal(n: Option<u64>) -> Option<i64> {
    n.map(crate::bigint::to_db)
}

/// What [`working::NEWEST_ORDINALS`] read: NULL no turn, -1 none stored.
fn newest(v: Option<i64>) -> NewestOrdinal {
    match v {
        None => NewestOrdinal::NoTurn,
        Some(n) if n < 0 => NewestOrdinal::Unknown,
        Some(n) => NewestOrdinal::At(n as u64),
    }
}
