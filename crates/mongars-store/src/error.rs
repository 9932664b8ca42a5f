//! Store errors and their mapping onto the core's `RepoError`.

use mongars_core::ports::RepoError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database: {0}")]
    Connect(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    #[error("database error: {0}")]
    Query(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Query(e.to_string())
    }
}

/// Classify a sqlx error for the core: unique violations, unreachable
/// databases, everything else.
pub(crate) fn repo_err(e: sqlx::Error) -> RepoError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => RepoError::Duplicate,
        _ if unreachable(&e) => RepoError::Unavailable(e.to_string()),
        _ => RepoError::Other(e.to_string()),
    }
}

/// Whether `e` says the database cannot be reached or the connection was
/// lost (reset, cut, closed by a restarting server), rather than that the
/// statement was wrong: the caller may try again later.
pub(crate) fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions (class 08), and a server
        // shutting down or starting up (57P01-57P03). SQLite: the write
        // lock still held by another connection after the busy handler's
        // wait (SQLITE_BUSY and its extended codes, the low byte 5).
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08")
                || matches!(&*c, "57P01" | "57P02" | "57P03")
                || (db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && c.parse::<i32>().is_ok_and(|n| n & 0xff == 5))
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_not_internal() {
        let reset = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(repo_err(reset), RepoError::Unavailable(_)));
        assert!(matches!(
            repo_err(sqlx::Error::Protocol("unexpected end of stream".into())),
            RepoError::Unavailable(_)
        ));
        assert!(matches!(
            repo_err(sqlx::Error::RowNotFound),
            RepoError::Other(_)
        ));
    }
}
