//! State that several monGARS replicas share through Redis: the event bus
//! (pub/sub on one channel), single-use WebSocket tickets (`SET PX` then
//! `GETDEL`) and the chat rate limiter (a token bucket in a Lua script, timed
//! by Redis's own clock so replicas' clocks do not matter).
//!
//! Nothing connects at start-up: the command connection is made on first use
//! and re-made after a failure, the subscriber retries with backoff, and
//! `/ready` reports Redis through [`RedisHealth`].

mod bus;
mod limiter;
mod tickets;

pub use bus::RedisBus;
pub use limiter::RedisRateLimiter;
pub use tickets::RedisTickets;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// A Redis server as the replicas use it.
#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    commands: ConnectionManager,
    prefix: String,
    timeout: Duration,
}

impl Redis {
    /// Parse `url` and prepare a lazily connected command connection.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis.url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| format!("redis: {e}"))?;
        Ok(Self {
            client,
            commands,
            prefix: prefix.to_string(),
            timeout,
        })
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for p in parts {
            key.push(':');
            key.push_str(p);
        }
        key
    }

    /// Run a command with the configured deadline.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut con = self.commands.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async(&mut con)).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }
}

/// `/ready` check: Redis answers PING.
pub struct RedisHealth(pub Redis);

#[async_trait]
impl mongars_core::ports::HealthCheck for RedisHealth {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        let pong: String = self.0.run(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected answer to PING: {pong}"))
        }
    }
}
