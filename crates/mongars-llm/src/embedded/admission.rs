//! Admission by expected wait: a request is queued only if the engine can
//! be expected to start it within `max_wait`. The expectation is the
//! replies in front of it beyond the slots, times how often the engine
//! frees a slot under load: the moving average of the time between two
//! replies ending while others waited (which includes what running several
//! at once costs each), and at least the average time a reply holds its
//! slot divided by the slots. Past the limit
//! the caller answers 503 with `Retry-After` at once, instead of queueing a
//! request that would time out after holding a client for a minute. Until
//! a reply has finished there is no measure, and only the queue's capacity
//! limits admission.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Weight of the newest sample in the moving averages (1/8).
const SHIFT: u32 = 3;

pub(crate) struct Admission {
    /// Longest expected wait admitted; zero: no limit but the queue's.
    max_wait: Duration,
    /// Moving average of the time a reply holds its slot, in microseconds;
    /// zero until one has finished.
    service_us: AtomicU64,
    /// Moving average of the time between two replies ending while others
    /// waited, in microseconds; zero until measured.
    gap_us: AtomicU64,
    last_end: Mutex<Option<Instant>>,
}

fn average(cell: &AtomicU64, sample: Duration) -> u64 {
    let sample = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX).max(1);
    let update = |old: u64| {
        Some(if old == 0 {
            sample
        } else {
            old - (old >> SHIFT) + (sample >> SHIFT)
        })
    };
    match cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, update) {
        Ok(old) => update(old).unwrap_or(sample),
        Err(now) => now,
    }
}

fn micros(cell: &AtomicU64) -> Option<Duration> {
    match cell.load(Ordering::Relaxed) {
        0 => None,
        us => Some(Duration::from_micros(us)),
    }
}

impl Admission {
    pub fn new(max_wait: Duration) -> Self {
        Self {
            max_wait,
            service_us: AtomicU64::new(0),
            gap_us: AtomicU64::new(0),
            last_end: Mutex::new(None),
        }
    }

    /// A reply ended at `now` after holding its slot for `service`;
    /// `saturated` when other replies were waiting for a slot.
    pub fn record(&self, service: Duration, saturated: bool, now: Instant) {
        let service_us = average(&self.service_us, service);
        let mut last = self.last_end.lock().unwrap_or_else(|p| p.into_inner());
        if saturated && let Some(before) = *last {
            // Under load a slot frees at least once per reply's time.
            let longest = service.max(Duration::from_micros(service_us));
            let gap = now.saturating_duration_since(before).min(longest);
            let gap_us = average(&self.gap_us, gap);
            tracing::trace!(?service, ?gap, service_us, gap_us, "admission measure");
        }
        *last = Some(now);
    }

    /// How often a slot frees up under load, once known: the measured
    /// time between ends, but never less than a reply's time shared by
    /// the slots (ends come in bursts when replies ran together).
    fn per_reply(&self, parallel: usize) -> Option<Duration> {
        let shared = micros(&self.service_us).map(|s| s / parallel as u32);
        match (micros(&self.gap_us), shared) {
            (Some(gap), Some(shared)) => Some(gap.max(shared)),
            (gap, shared) => gap.or(shared),
        }
    }

    /// Expected wait before a slot is free for a request that finds `ahead`
    /// replies running, queued or about to be on `parallel` slots: none
    /// while a slot is free, else one slot's freeing for every reply in
    /// front of it beyond the slots, and its own.
    pub fn expected_wait(&self, ahead: usize, parallel: usize) -> Duration {
        let parallel = parallel.max(1);
        if ahead < parallel {
            return Duration::ZERO;
        }
        self.per_reply(parallel)
            .map_or(Duration::ZERO, |each| each * (ahead + 1 - parallel) as u32)
    }

    /// `Err(seconds to wait before trying again)` when a request finding
    /// `ahead` replies in front of it would wait longer than allowed.
    pub fn check(&self, ahead: usize, parallel: usize) -> Result<(), u64> {
        if self.max_wait.is_zero() {
            return Ok(());
        }
        let wait = self.expected_wait(ahead, parallel);
        tracing::trace!(ahead, ?wait, "admission check");
        if wait <= self.max_wait {
            return Ok(());
        }
        // When the queue has drained to what the limit allows.
        Err((wait - self.max_wait).as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn without_a_measure_only_the_queue_limits() {
        let a = Admission::new(SEC);
        assert_eq!(a.expected_wait(1000, 4), Duration::ZERO);
        assert_eq!(a.check(1000, 4), Ok(()));
    }

    #[test]
    fn before_the_engine_was_busy_a_slot_frees_once_per_reply_time_per_slot() {
        let a = Admission::new(10 * SEC);
        a.record(2 * SEC, false, Instant::now());
        assert_eq!(a.expected_wait(3, 4), Duration::ZERO, "a slot is free");
        assert_eq!(a.expected_wait(4, 4), SEC / 2);
        assert_eq!(a.expected_wait(7, 4), 2 * SEC);
        assert_eq!(a.expected_wait(1, 1), 2 * SEC);
    }

    #[test]
    fn under_load_the_time_between_replies_ending_decides() {
        let a = Admission::new(10 * SEC);
        let t0 = Instant::now();
        // Alone a reply took 2 s; four at once, each ends 3 s apart.
        a.record(2 * SEC, false, t0);
        a.record(8 * SEC, true, t0 + 3 * SEC);
        assert_eq!(a.expected_wait(4, 4), 3 * SEC);
        assert_eq!(a.check(6, 4), Ok(()), "9 s");
        assert_eq!(a.check(7, 4), Err(2), "12 s: back in 2 s");
        // Ends without others waiting (the load eased) are not gaps.
        a.record(SEC, false, t0 + 60 * SEC);
        assert_eq!(a.expected_wait(4, 4), 3 * SEC);
    }

    #[test]
    fn a_gap_is_never_counted_longer_than_a_reply() {
        let a = Admission::new(10 * SEC);
        let t0 = Instant::now();
        a.record(SEC, false, t0);
        a.record(SEC, true, t0 + 100 * SEC);
        assert!(a.expected_wait(1, 1) <= SEC);
    }

    #[test]
    fn past_the_limit_the_answer_says_when_to_come_back() {
        let a = Admission::new(10 * SEC);
        a.record(4 * SEC, false, Instant::now());
        // 4 slots, 4 s a reply: 1 s per reply in front past the slots.
        assert_eq!(a.check(13, 4), Ok(()), "10 s is allowed");
        assert_eq!(a.check(14, 4), Err(1));
        assert_eq!(a.check(20, 4), Err(7));
        let off = Admission::new(Duration::ZERO);
        off.record(4 * SEC, false, Instant::now());
        assert_eq!(off.check(1000, 4), Ok(()));
    }

    #[test]
    fn the_averages_follow_the_latest_replies() {
        let a = Admission::new(SEC);
        let t0 = Instant::now();
        a.record(SEC, false, t0);
        assert_eq!(a.expected_wait(1, 1), SEC);
        for _ in 0..64 {
            a.record(3 * SEC, false, t0);
        }
        let now = a.expected_wait(1, 1);
        assert!(now > SEC * 29 / 10 && now <= 3 * SEC, "{now:?}");
        for _ in 0..64 {
            a.record(Duration::from_millis(500), false, t0);
        }
        let now = a.expected_wait(1, 1);
        assert!(now < Duration::from_millis(600), "{now:?}");
    }
}
