//! Which indexes a turn's completion rewrites. Under SQLite's single
//! writer every entry moved while the lock is held shows in the chats per
//! second once tables grow, so completion keeps to the indexes that must
//! change: the pending turns' (the turn leaves it) and working memory's
//! two (the turn enters them). The user's and the session's indexes order
//! turns by time alone and are written once, when the turn starts.

use super::COMPLETE;
use sqlx::Row;

/// The columns `COMPLETE` sets.
fn completed_columns() -> Vec<String> {
    let set = COMPLETE
        .split_once(" SET ")
        .and_then(|(_, rest)| rest.split_once(" WHERE "))
        .expect("an UPDATE ... SET ... WHERE")
        .0;
    set.split(',')
        .map(|a| a.split('=').next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn the_completion_statement_is_read_as_its_columns() {
    let columns = completed_columns();
    assert_eq!(columns.len(), 12, "{columns:?}");
    for c in ["response", "status", "completed_at", "wm_expires_at"] {
        assert!(columns.iter().any(|x| x == c), "{c} in {columns:?}");
    }
}

#[tokio::test]
async fn completing_a_turn_rewrites_only_the_indexes_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::testing::fresh_sqlite(dir.path()).await;
    let crate::db::Pool::Sqlite(pool) = db.pool() else {
        unreachable!("a SQLite database")
    };
    let completed = completed_columns();
    let indexes = sqlx::query(
        "SELECT name, COALESCE(sql, '') AS sql FROM sqlite_master \
         WHERE type = 'index' AND tbl_name = 'conversation_turns' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(indexes.len() >= 5, "the table's indexes are listed");
    let mut rewritten = Vec::new();
    for index in &indexes {
        let name: String = index.get("name");
        let sql: String = index.get("sql");
        let keys: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_index_info('{name}')"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        // A partial index's condition counts as much as its keys: a turn
        // enters or leaves it when a column the condition reads changes.
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let condition = sql.split_once(" WHERE ").map(|(_, c)| c).unwrap_or("");
        let reads_completed = completed
            .iter()
            .any(|c| keys.contains(c) || condition.contains(c.as_str()));
        if reads_completed {
            rewritten.push(name);
        }
    }
    assert_eq!(
        rewritten,
        [
            "conversation_turns_pending",
            "conversation_turns_working_expiry",
            "conversation_turns_working_order",
        ],
        "indexes holding a column a completion sets"
    );
}
