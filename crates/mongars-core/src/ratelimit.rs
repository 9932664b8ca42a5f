//! Per-user token buckets for chat requests, held in this process. A request
//! takes one token; a rejected request takes none, and says how long until
//! one is available. Replicas that share Redis use its limiter instead.

use crate::ports::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct LocalRateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<i64, Bucket>>,
    clock: Arc<dyn Clock>,
}

/// Buckets kept before full ones are forgotten.
const SWEEP_AT: usize = 10_000;

impl LocalRateLimiter {
    /// `per_minute` tokens refill each minute, up to `burst` at once.
    pub fn new(per_minute: u32, burst: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            capacity: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Take a token for `key`, or `Err(seconds to wait)`.
    pub fn try_acquire(&self, key: i64, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            let (cap, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, b| refill(b, now, cap, rate) < cap);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
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
    use std::time::Duration;

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
}
