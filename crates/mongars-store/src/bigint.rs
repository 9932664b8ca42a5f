//! Counts and versions as both engines store them: a signed `BIGINT` on
//! the database side, `u64` on ours.

/// A stored count or version (never negative when we wrote it).
pub(crate) fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A count or version to store, clamped to the column's range.
pub(crate) fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
