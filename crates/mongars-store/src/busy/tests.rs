use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn the_first_tries_yield_then_sleeps_double_up_to_a_millisecond() {
    let pauses: Vec<u64> = (0..12).map(pause_us).collect();
    assert_eq!(
        pauses,
        [0, 0, 0, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]
    );
    assert_eq!(pause_us(u32::MAX), LONGEST_US);
}

#[test]
fn the_waits_counted_are_the_pauses_taken() {
    let mut sum = 0;
    for attempt in 0..200 {
        assert_eq!(waited_us(attempt), sum, "before try {attempt}");
        sum += pause_us(attempt);
    }
}

#[test]
fn the_handler_gives_up_once_its_pauses_reach_the_timeout() {
    // A limit of zero: not even one retry.
    assert_eq!(on_busy(std::ptr::null_mut(), 0), 0);
    // Five seconds: retried until the pauses add up to them.
    let limit = 5_000_000usize as *mut c_void;
    let last = (0..).find(|&a| waited_us(a) >= 5_000_000).unwrap();
    assert_eq!(on_busy(limit, (last - 1) as c_int), 1);
    assert_eq!(on_busy(limit, last as c_int), 0);
    assert!(waited_us(last) < 5_000_000 + LONGEST_US);
}

/// A new database's pool, with an empty table `t`.
async fn table_t() -> (tempfile::TempDir, sqlx::SqlitePool) {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::testing::fresh_sqlite(dir.path()).await;
    let crate::db::Pool::Sqlite(pool) = db.pool() else {
        unreachable!()
    };
    sqlx::query("CREATE TABLE t (x INTEGER)")
        .execute(pool)
        .await
        .unwrap();
    (dir, pool.clone())
}

/// The connections of a pool wait for another's write with this handler,
/// and the waiting write goes through once the lock is freed.
#[tokio::test]
async fn a_write_waits_for_the_lock_another_connection_holds() {
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let (_dir, pool) = table_t().await;
    let mut holder = pool.acquire().await.unwrap();
    let mut waiter = pool.acquire().await.unwrap();
    // Count the handler's calls on the waiter's connection: a second
    // handler wrapping ours.
    extern "C" fn counting(limit: *mut c_void, attempt: c_int) -> c_int {
        SEEN.fetch_add(1, Ordering::SeqCst);
        on_busy(limit, attempt)
    }
    set_handler(&mut waiter, counting, Duration::from_secs(60))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let write = tokio::spawn(async move {
        sqlx::query("INSERT INTO t VALUES (2)")
            .execute(&mut *waiter)
            .await
            .map(|r| r.rows_affected())
    });
    // Free the lock only once the waiter has found it taken.
    while SEEN.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut *holder)
        .await
        .unwrap();
    sqlx::query("COMMIT").execute(&mut *holder).await.unwrap();
    assert_eq!(write.await.unwrap().unwrap(), 1);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_write_past_the_timeout_fails_as_locked_and_changes_nothing() {
    let (_dir, pool) = table_t().await;
    let mut holder = pool.acquire().await.unwrap();
    let mut waiter = pool.acquire().await.unwrap();
    install(&mut waiter, Duration::from_millis(2))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    // The lock is held until the waiter has given up.
    let e = sqlx::query("INSERT INTO t VALUES (2)")
        .execute(&mut *waiter)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("database is locked"), "{e}");
    // A lock held too long is for trying again later, not an internal
    // error.
    assert!(
        matches!(
            crate::error::repo_err(e),
            mongars_core::ports::RepoError::Unavailable(_)
        ),
        "locked is unavailable"
    );
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
        .fetch_one(&mut *waiter)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
