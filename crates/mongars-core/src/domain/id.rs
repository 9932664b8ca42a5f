//! Identifiers of rows written at every turn (turns, the memories learnt
//! from them): UUID version 7, whose first 48 bits are the creation time in
//! milliseconds. In their text form later ids sort after earlier ones, so a
//! new row's key lands at the end of its primary-key index (a page already
//! in cache) instead of on a random page of an index that grows with the
//! history. The time they carry is the row's own `created_at`, already
//! shown to its owner.

use chrono::{DateTime, Utc};
use uuid::{NoContext, Timestamp, Uuid};

/// A new identifier made at `at` (the clock's now): unique, and ordered by
/// time down to the millisecond (random within one).
pub fn time_ordered_id(at: DateTime<Utc>) -> String {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let ts = Timestamp::from_unix(NoContext, secs, at.timestamp_subsec_nanos());
    Uuid::new_v7(ts).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_sort_by_time_and_never_repeat() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let mut ids = Vec::new();
        for ms in 0..200 {
            let at = t0 + chrono::Duration::milliseconds(ms);
            ids.push(time_ordered_id(at));
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "text order is time order");
        // The same instant: still distinct.
        let same: std::collections::HashSet<String> =
            (0..1000).map(|_| time_ordered_id(t0)).collect();
        assert_eq!(same.len(), 1000);
        let id = Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, _) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, t0.timestamp() as u64);
        // Before 1970 (a clock gone wrong): the epoch, not a panic.
        let old = Utc.with_ymd_and_hms(1960, 1, 1, 0, 0, 0).unwrap();
        assert!(time_ordered_id(old).starts_with("00000000-0000-7"));
    }
}
