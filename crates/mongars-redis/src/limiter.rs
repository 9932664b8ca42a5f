//! The chat rate limiter in Redis: one token bucket per user, refilled and
//! taken in a single script so concurrent requests on several replicas
//! cannot both take the last token.

use crate::Redis;
use async_trait::async_trait;
use mongars_core::ports::RateLimiter;

/// KEYS[1] bucket; ARGV[1] capacity, ARGV[2] tokens per millisecond.
/// Returns {1, 0} when a token was taken, {0, milliseconds to wait} when not.
const BUCKET: &str = r"
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or capacity
local ts = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * per_ms)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
if wait > 0 then return {0, wait} end
return {1, 0}
";

pub struct RedisRateLimiter {
    redis: Redis,
    /// What is limited (`chat`, `ticket`): part of each bucket's key.
    name: &'static str,
    script: redis::Script,
    capacity: u32,
    per_ms: f64,
}

impl RedisRateLimiter {
    /// `per_minute` tokens refill each minute, up to `burst` at once;
    /// `name` keeps this limiter's buckets apart from others'.
    pub fn new(redis: Redis, name: &'static str, per_minute: u32, burst: u32) -> Self {
        Self {
            redis,
            name,
            script: redis::Script::new(BUCKET),
            capacity: burst.max(1),
            per_ms: f64::from(per_minute.max(1)) / 60_000.0,
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn acquire(&self, user_id: i64) -> Result<(), u64> {
        let key = self.redis.key(&["rate", self.name, &user_id.to_string()]);
        let mut con = self.redis.commands.clone();
        let mut call = self.script.key(key);
        call.arg(self.capacity).arg(self.per_ms);
        let answer = tokio::time::timeout(self.redis.timeout, call.invoke_async(&mut con)).await;
        match answer {
            Ok(Ok((1, _))) => Ok(()),
            Ok(Ok((_, wait_ms))) => {
                let wait_ms: u64 = wait_ms;
                Err(wait_ms.div_ceil(1000).max(1))
            }
            // A limiter that cannot be reached lets requests through rather
            // than turning a Redis outage into a chat outage.
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "rate limiter unavailable; request allowed");
                Ok(())
            }
            Err(_) => {
                tracing::warn!("rate limiter timed out; request allowed");
                Ok(())
            }
        }
    }
}
