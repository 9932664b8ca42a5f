//! What must hold in the database whatever stopped the server, checked on
//! what is stored: the engine's own check (SQLite's `integrity_check`), no
//! turn left `pending` once recovery has run (unless a server may be
//! running, whose chats in flight are pending), working memory made of
//! complete turns only, and every turn memory tied to a complete turn, with
//! vectors of one well-formed size. `mongars doctor` and the crash tests
//! run it; an empty list means all holds.

use crate::db::{Database, Pool};
use crate::error::StoreError;

const PENDING: &str = "no turn left pending";

/// Each rule as (what it says, a query counting the rows that break it).
const RULES: [(&str, &str); 4] = [
    (
        PENDING,
        "SELECT COUNT(*) FROM conversation_turns WHERE status = 'pending'",
    ),
    (
        "working memory holds complete turns only",
        "SELECT COUNT(*) FROM conversation_turns \
         WHERE wm_expires_at IS NOT NULL AND status <> 'complete'",
    ),
    (
        "every turn memory comes from a complete turn",
        "SELECT COUNT(*) FROM memories m WHERE m.kind = 'turn' AND NOT EXISTS \
         (SELECT 1 FROM conversation_turns t WHERE t.id = m.source AND t.status = 'complete')",
    ),
    (
        "every vector is whole (four bytes a component)",
        "SELECT COUNT(*) FROM memories WHERE length(embedding) = 0 OR length(embedding) % 4 <> 0",
    ),
];

/// The rules broken, each with how many rows break it. `serving`: a
/// server may be running, so pending turns are not counted.
pub async fn integrity_problems(db: &Database, serving: bool) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    if let Pool::Sqlite(pool) = db.pool() {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(pool)
            .await?;
        if rows != ["ok"] {
            problems.push(format!("SQLite integrity_check: {}", rows.join("; ")));
        }
    }
    for (rule, query) in RULES {
        if serving && rule == PENDING {
            continue;
        }
        let broken: i64 = match db.pool() {
            Pool::Sqlite(pool) => sqlx::query_scalar(query).fetch_one(pool).await?,
            Pool::Postgres(pool) => sqlx::query_scalar(query).fetch_one(pool).await?,
        };
        if broken > 0 {
            problems.push(format!("{rule}: {broken} rows break it"));
        }
    }
    let sizes: i64 = match db.pool() {
        Pool::Sqlite(pool) => {
            sqlx::query_scalar("SELECT COUNT(DISTINCT length(embedding)) FROM memories")
                .fetch_one(pool)
                .await?
        }
        Pool::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(DISTINCT length(embedding)) FROM memories")
                .fetch_one(pool)
                .await?
        }
    };
    if sizes > 1 {
        problems.push(format!("vectors of {sizes} different sizes"));
    }
    Ok(problems)
}
