//! Time as the services see it. Everything that expires, refills or cools
//! down asks a [`Clock`], so tests move time forward instead of sleeping.

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Source of the current time: wall-clock for what is stored and shown,
/// monotonic for what expires.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;

    /// Monotonic time, for windows, buckets and cool-downs.
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock for tests and benches: the system's time plus an offset that only
/// grows ([`advance`](Self::advance)), or, once [`freeze`](Self::freeze)n,
/// a time that moves only when advanced.
#[derive(Debug, Default)]
pub struct ManualClock {
    state: Mutex<ManualState>,
}

#[derive(Debug, Default)]
struct ManualState {
    frozen: Option<(DateTime<Utc>, Instant)>,
    offset: Duration,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Move time forward by `by`, for every reader at once.
    pub fn advance(&self, by: Duration) {
        self.lock().offset += by;
    }

    /// Stop following the system's time: from now on time moves only when
    /// advanced. Freezing a frozen clock changes nothing.
    pub fn freeze(&self) {
        let mut s = self.lock();
        if s.frozen.is_none() {
            let offset = s.offset;
            s.frozen = Some((Utc::now() + offset, Instant::now() + offset));
            s.offset = Duration::ZERO;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let s = self.lock();
        s.frozen.map_or_else(Utc::now, |(at, _)| at) + s.offset
    }

    fn instant(&self) -> Instant {
        let s = self.lock();
        s.frozen.map_or_else(Instant::now, |(_, at)| at) + s.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(60));
        assert!(clock.now() > Utc::now() + chrono::Duration::seconds(59));
        clock.freeze();
        let (t, i) = (clock.now(), clock.instant());
        assert_eq!((clock.now(), clock.instant()), (t, i));
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.instant() - i, Duration::from_millis(1500));
        assert_eq!((clock.now() - t).num_milliseconds(), 1500);
    }
}
