//! SQLite's own heap in this process: the page caches, prepared statements
//! and schemas of every connection, as SQLite counts them. Each connection's
//! page cache is bounded by its `cache_size` (SQLite's default, 2 MiB), so
//! this grows with the pool and the database only up to that bound.

/// Bytes SQLite holds now, and the most it has held since the process began.
#[allow(unsafe_code)]
pub fn sqlite_heap() -> (i64, i64) {
    // SAFETY: both calls only read SQLite's global memory counters, which
    // the library keeps usable from any thread; a reset flag of 0 leaves the
    // high-water mark untouched.
    unsafe {
        (
            libsqlite3_sys::sqlite3_memory_used(),
            libsqlite3_sys::sqlite3_memory_highwater(0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_what_connections_hold() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testing::fresh_sqlite(dir.path()).await;
        let (used, high) = sqlite_heap();
        assert!(used > 0, "an open, migrated database holds memory");
        assert!(high >= used);
        db.close().await;
    }
}
