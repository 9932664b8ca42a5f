//! How a SQLite connection waits for the write lock another connection
//! holds.
//!
//! In WAL mode readers never wait, but writers take turns: a chat's writes
//! (the turn started, the turn completed, the style profile) hold the lock
//! for about a tenth of a millisecond each. SQLite's own handler, installed
//! by `busy_timeout`, sleeps 1, 2, 5, 10 ms... between tries, so a write
//! that finds another under way waits a whole millisecond or more for a
//! lock freed a few microseconds later: with four users chatting, one write
//! in ten waited over a millisecond (`mongars bench chat`).
//!
//! This handler yields the thread for the first tries, then sleeps from
//! 20 µs doubling up to 1 ms, and gives up (the statement fails with
//! `database is locked`, as before) once its pauses add up to the
//! configured timeout.

use sqlx::sqlite::SqliteConnection;
use std::os::raw::{c_int, c_void};
use std::time::Duration;

/// Tries answered by yielding the thread rather than sleeping.
const YIELDS: u32 = 3;
/// The first sleep, in microseconds; each next one doubles...
const FIRST_US: u64 = 20;
/// ...up to this.
const LONGEST_US: u64 = 1000;
/// Sleeps before the pause reaches [`LONGEST_US`]: 20, 40, ... 640 µs.
const DOUBLINGS: u32 = 6;

/// The pause before try `attempt + 1` (0: the first retry).
fn pause_us(attempt: u32) -> u64 {
    match attempt.checked_sub(YIELDS) {
        None => 0,
        Some(n) => (FIRST_US << n.min(DOUBLINGS)).min(LONGEST_US),
    }
}

/// What the pauses before try `attempt` add up to, in microseconds.
fn waited_us(attempt: u32) -> u64 {
    let Some(n) = attempt.checked_sub(YIELDS) else {
        return 0;
    };
    if n <= DOUBLINGS {
        FIRST_US * ((1 << n) - 1)
    } else {
        FIRST_US * ((1 << DOUBLINGS) - 1) + u64::from(n - DOUBLINGS) * LONGEST_US
    }
}

/// Called by SQLite with the number of times it was already called for the
/// same wait; nonzero to try again. `timeout` is the limit in microseconds,
/// carried in the pointer-sized argument.
extern "C" fn on_busy(timeout: *mut c_void, attempt: c_int) -> c_int {
    let attempt = u32::try_from(attempt).unwrap_or(0);
    if waited_us(attempt) >= timeout as u64 {
        return 0;
    }
    match pause_us(attempt) {
        0 => std::thread::yield_now(),
        us => std::thread::sleep(Duration::from_micros(us)),
    }
    1
}

/// Replace the connection's busy handler with [`on_busy`], giving up after
/// `timeout` of waiting.
pub(crate) async fn install(
    conn: &mut SqliteConnection,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    set_handler(conn, on_busy, timeout).await
}

/// A busy handler with its limit, as SQLite calls it.
type Handler = extern "C" fn(*mut c_void, c_int) -> c_int;

/// Set `handler` on the connection, called with `timeout` in microseconds.
#[allow(unsafe_code)]
async fn set_handler(
    conn: &mut SqliteConnection,
    handler: Handler,
    timeout: Duration,
) -> Result<(), sqlx::Error> {
    let limit = usize::try_from(timeout.as_micros()).unwrap_or(usize::MAX);
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked by
    // `handle` for the call; the callback keeps no state (its argument is
    // an integer carried as a pointer, never dereferenced) and, being a
    // plain function, stays valid for the life of the program.
    let rc =
        unsafe { libsqlite3_sys::sqlite3_busy_handler(db, Some(handler), limit as *mut c_void) };
    if rc != libsqlite3_sys::SQLITE_OK {
        return Err(sqlx::Error::Protocol(format!(
            "cannot set the SQLite busy handler (code {rc})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
