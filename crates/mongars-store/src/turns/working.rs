//! The statements of working memory: read newest first on every turn,
//! trimmed per user every few turns past the bound, swept by expiry in the
//! background, and counted (the repository's contract checks the bound with
//! it). Each is served by the partial indexes of migration 6
//! (`conversation_turns_working_*`) without sorting, so a turn costs the
//! same however long the history; a test reads SQLite's plans to keep it so.

/// Complete turns of a user still in working memory (`$1` user, `$2` now).
pub(super) const COUNT: &str = "SELECT COUNT(*) FROM conversation_turns WHERE user_id = $1 \
     AND status = 'complete' AND wm_expires_at > $2";

/// The same within one session (`$1` user, `$2` session, `$3` now).
pub(super) const COUNT_IN_SESSION: &str = "SELECT COUNT(*) FROM conversation_turns \
     WHERE user_id = $1 AND session_id = $2 AND status = 'complete' AND wm_expires_at > $3";

/// Every complete turn of a user (`$1`), through the index on
/// `(user_id, created_at)` and each turn's row. Read once per user and
/// session, for turns stored before ordinals were, never again after.
pub(super) const HISTORY: &str =
    "SELECT COUNT(*) FROM conversation_turns WHERE user_id = $1 AND status = 'complete'";

/// The same within one session (`$2`), by the session index.
pub(super) const HISTORY_IN_SESSION: &str = "SELECT COUNT(*) FROM conversation_turns \
     WHERE user_id = $1 AND session_id = $2 AND status = 'complete'";

/// The ordinals of the user's newest complete turn and of the newest
/// complete turn in a session (`$1` user, `$2` session or NULL): -1 where
/// that turn holds none, NULL where there is no such turn. Each walks the
/// end of the `(user_id, created_at)` or session index newest first and
/// stops at the first complete turn: past only the turns still pending or
/// failed after it, however long the history.
pub(super) const NEWEST_ORDINALS: &str = "SELECT \
     (SELECT COALESCE(ordinal, -1) FROM conversation_turns \
      WHERE user_id = $1 AND status = 'complete' ORDER BY created_at DESC LIMIT 1), \
     (SELECT COALESCE(session_ordinal, -1) FROM conversation_turns \
      WHERE user_id = $1 AND session_id = $2 AND status = 'complete' \
      ORDER BY created_at DESC LIMIT 1)";

/// The newest working turns, `select` being the columns' `SELECT ... FROM`:
/// `$1` user, then `$2` session when `in_session`, then the limit and now.
pub(super) fn recent(select: &str, in_session: bool) -> String {
    if in_session {
        format!(
            "{select} WHERE user_id = $1 AND session_id = $2 AND status = 'complete' \
             AND wm_expires_at > $4 ORDER BY created_at DESC, id DESC LIMIT $3"
        )
    } else {
        format!(
            "{select} WHERE user_id = $1 AND status = 'complete' \
             AND wm_expires_at > $3 ORDER BY created_at DESC, id DESC LIMIT $2"
        )
    }
}

/// All but the newest `$2` working turns of a user (`$1`) leave working
/// memory; nothing is written when the user holds no more than that. The
/// index is walked newest first past the kept ones (never more than the
/// bound and the few that overflow it) and only the rest are written.
/// SQLite spells "no limit" `LIMIT -1`, PostgreSQL `LIMIT ALL`.
pub(super) fn trim(no_limit: &str) -> String {
    format!(
        "UPDATE conversation_turns SET wm_expires_at = NULL WHERE id IN ( \
           SELECT id FROM conversation_turns \
           WHERE user_id = $1 AND wm_expires_at IS NOT NULL \
           ORDER BY created_at DESC, id DESC LIMIT {no_limit} OFFSET $2)"
    )
}

/// [`trim`] for SQLite.
pub(super) const SQLITE_NO_LIMIT: &str = "-1";
/// [`trim`] for PostgreSQL.
pub(super) const POSTGRES_NO_LIMIT: &str = "ALL";

/// Every turn whose working time has passed (`$1` now) leaves it.
pub(super) const PURGE: &str =
    "UPDATE conversation_turns SET wm_expires_at = NULL WHERE wm_expires_at <= $1";

#[cfg(test)]
mod plans {
    use super::*;
    use crate::plans::plan;

    #[tokio::test]
    async fn every_working_memory_statement_uses_its_index_and_sorts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testing::fresh_sqlite(dir.path()).await;
        let select = "SELECT * FROM conversation_turns";
        for (sql, binds, index) in [
            (COUNT.to_string(), 2, "conversation_turns_working_order"),
            (
                COUNT_IN_SESSION.to_string(),
                3,
                "conversation_turns_working_order",
            ),
            (recent(select, false), 3, "conversation_turns_working_order"),
            (recent(select, true), 4, "conversation_turns_working_order"),
            (trim(SQLITE_NO_LIMIT), 2, "conversation_turns_working_order"),
            (PURGE.to_string(), 1, "conversation_turns_working_expiry"),
            (HISTORY.to_string(), 1, "INDEX conversation_turns_user"),
            (
                HISTORY_IN_SESSION.to_string(),
                2,
                "INDEX conversation_turns_session",
            ),
            (
                NEWEST_ORDINALS.to_string(),
                2,
                "INDEX conversation_turns_user",
            ),
        ] {
            let plan = plan(&db, &sql, binds).await;
            assert!(plan.contains(index), "{sql}\nplan:\n{plan}");
            if sql == NEWEST_ORDINALS {
                // The second step goes down the session index.
                assert!(plan.contains("INDEX conversation_turns_session"), "{plan}");
            }
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\nsorts:\n{plan}");
            assert!(
                !plan.contains("SCAN conversation_turns"),
                "{sql}\nscans:\n{plan}"
            );
        }
    }
}
