//! Per-user token buckets for chat requests, held in this process. A request
//! takes one token; a rejected request takes none, and says how long until
//! one is available. Replicas that share Redis use its limiter instead.
//!
//! A full bucket is the same as none, so full buckets are forgotten: once
//! per refill period (the time an empty bucket takes to fill), and sooner if
//! the users tracked double past [`SWEEP_AT`]. The limiter so holds only the
//! users seen within about two refill periods, however many come and go over
//! the process's life.

use crate::ports::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct LocalRateLimiter {
    capacity: f64,
    per_second: f64,
    /// How long an empty bucket takes to fill (within 1 s and 1 h).
    refill_time: Duration,
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
}

struct State {
    buckets: HashMap<i64, Bucket>,
    /// When full buckets are next forgotten.
    next_sweep: Option<Instant>,
    /// Buckets that bring the next sweep forward.
    sweep_len: usize,
}

/// Buckets tracked before full ones are forgotten ahead of time.
const SWEEP_AT: usize = 10_000;

impl LocalRateLimiter {
    /// `per_minute` tokens refill each minute, up to `burst` at once.
    pub fn new(per_minute: u32, burst: u32, clock: Arc<dyn Clock>) -> Self {
        let capacity = f64::from(burst.max(1));
        let per_second = f64::from(per_minute.max(1)) / 60.0;
        Self {
            capacity,
            per_second,
            refill_time: Duration::from_secs_f64((capacity / per_second).clamp(1.0, 3600.0)),
            state: Mutex::new(State {
                buckets: HashMap::new(),
                next_sweep: None,
                sweep_len: SWEEP_AT,
            }),
            clock,
        }
    }

    /// Forget the full buckets when due; the map's spare room goes too.
    fn sweep(&self, state: &mut State, now: Instant) {
        let due = state.next_sweep.is_none_or(|at| now >= at);
        if !due && state.buckets.len() < state.sweep_len {
            return;
        }
        let (cap, rate) = (self.capacity, self.per_second);
        state.buckets.retain(|_, b| refill(b, now, cap, rate) < cap);
        let kept = state.buckets.len();
        if state.buckets.capacity() > 4 * kept.max(64) {
            state.buckets.shrink_to(2 * kept);
        }
        state.next_sweep = Some(now + self.refill_time);
        state.sweep_len = SWEEP_AT.max(2 * kept);
    }

    /// Users with a bucket that is not full (or not yet forgotten).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().unwrap().buckets.len()
    }

    /// Take a token for `key`, or `Err(seconds to wait)`.
    pub fn try_acquire(&self, key: i64, now: Instant) -> Result<(), u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.sweep(&mut state, now);
        let bucket = state.buckets.entry(key).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let available = refill(bucket, now, self.capacity, self.per_second);
        bucket.tokens = available;
        bucket.updated = now;
        if available >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - available) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[async_trait::async_trait]
impl crate::ports::RateLimiter for LocalRateLimiter {
    async fn acquire(&self, user_id: i64) -> Result<(), u64> {
        self.try_acquire(user_id, self.clock.instant())
    }
}

fn refill(b: &Bucket, now: Instant, capacity: f64, per_second: f64) -> f64 {
    let elapsed = now.saturating_duration_since(b.updated).as_secs_f64();
    (b.tokens + elapsed * per_second).min(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::SystemClock;

    #[test]
    fn burst_then_refill_and_rejections_are_free() {
        let rl = LocalRateLimiter::new(60, 3, Arc::new(SystemClock));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(rl.try_acquire(1, t0).is_ok());
        }
        assert_eq!(rl.try_acquire(1, t0), Err(1));
        // Rejections do not consume: after one second exactly one more passes.
        for _ in 0..5 {
            assert!(rl.try_acquire(1, t0 + Duration::from_millis(500)).is_err());
        }
        assert!(rl.try_acquire(1, t0 + Duration::from_secs(1)).is_ok());
        assert!(rl.try_acquire(1, t0 + Duration::from_secs(1)).is_err());
        // Other users have their own bucket.
        assert!(rl.try_acquire(2, t0).is_ok());
    }

    #[test]
    fn retry_after_reflects_the_rate() {
        let rl = LocalRateLimiter::new(6, 1, Arc::new(SystemClock));
        let t0 = Instant::now();
        rl.try_acquire(1, t0).unwrap();
        assert_eq!(rl.try_acquire(1, t0), Err(10));
    }

    #[test]
    fn users_who_come_and_go_are_forgotten_once_their_bucket_is_full() {
        // 60 a minute, 5 at once: an empty bucket fills in 5 s.
        let rl = LocalRateLimiter::new(60, 5, Arc::new(SystemClock));
        let t0 = Instant::now();
        for user in 0..3000 {
            rl.try_acquire(user, t0).unwrap();
        }
        assert_eq!(rl.tracked(), 3000);
        // Before the refill period nothing is dropped...
        for _ in 0..5 {
            rl.try_acquire(-1, t0 + Duration::from_secs(4)).unwrap();
        }
        assert_eq!(rl.tracked(), 3001);
        // ...after it, only the users whose bucket is not full yet remain.
        let later = t0 + Duration::from_secs(6);
        rl.try_acquire(-2, later).unwrap();
        assert_eq!(rl.tracked(), 2, "the one still refilling and the new one");
        let state = rl.state.lock().unwrap();
        assert!(
            state.buckets.capacity() < 1024,
            "the map gave its room back"
        );
    }

    #[test]
    fn a_forgotten_user_starts_again_with_a_full_bucket_and_no_more() {
        let rl = LocalRateLimiter::new(60, 2, Arc::new(SystemClock));
        let t0 = Instant::now();
        rl.try_acquire(7, t0).unwrap();
        rl.try_acquire(7, t0).unwrap();
        assert!(rl.try_acquire(7, t0).is_err());
        let one = t0 + Duration::from_secs(1);
        rl.try_acquire(7, one).unwrap();
        // A user still refilling is kept by the sweep a refill period on.
        let two = t0 + Duration::from_secs(2);
        rl.try_acquire(8, two).unwrap();
        assert!(rl.try_acquire(7, two).is_ok());
        assert!(rl.try_acquire(7, two).is_err());
        // Long after, a sweep forgets 7 and a new bucket holds the burst.
        let later = t0 + Duration::from_secs(60);
        rl.try_acquire(9, later).unwrap();
        for _ in 0..2 {
            assert!(rl.try_acquire(7, later).is_ok());
        }
        assert!(rl.try_acquire(7, later).is_err());
    }
}
