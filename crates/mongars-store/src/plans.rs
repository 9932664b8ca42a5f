//! Query plans in tests: what SQLite does with a statement, so a test can
//! hold it to an index rather than to a timing.

use crate::db::Database;
use sqlx::Row;

/// SQLite's plan for `sql`, its placeholders bound to plausible values: the
/// first an id, the others timestamps (any text).
pub async fn plan(db: &Database, sql: &str, binds: usize) -> String {
    let crate::db::Pool::Sqlite(pool) = db.pool() else {
        unreachable!("a SQLite database")
    };
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query(sqlx::AssertSqlSafe(explain));
    for i in 0..binds {
        q = match i {
            0 => q.bind(1_i64),
            _ => q.bind("2026-01-01T00:00:00+00:00"),
        };
    }
    let rows = q.fetch_all(pool).await.expect("explain");
    rows.iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect::<Vec<_>>()
        .join("\n")
}
