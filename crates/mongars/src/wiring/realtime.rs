//! Realtime sessions and replica-shared state from settings: in this process
//! by default, on Redis when `redis.url` is set.

use mongars_config::Settings;
use mongars_core::auth::AuthService;
use mongars_core::ports::{Clock, EventBus, HealthCheck, RateLimiter, TicketStore};
use mongars_core::ratelimit::LocalRateLimiter;
use mongars_core::realtime::{
    Hub, LocalBus, LocalTickets, RealtimeOptions, RealtimeParts, RealtimeService,
};
use std::sync::Arc;
use std::time::Duration;

/// What replicas share, or this process keeps alone.
pub struct Shared {
    pub realtime: Arc<RealtimeService>,
    pub limiter: Arc<dyn RateLimiter>,
    /// Redis's `/ready` check, when Redis is configured.
    pub health: Option<Arc<dyn HealthCheck>>,
}

/// Build the event bus, ticket store and chat rate limiter. Nothing connects
/// here: Redis is reached on first use.
pub fn shared_from_settings(
    settings: &Settings,
    auth: Arc<AuthService>,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Shared> {
    let hub = Hub::new();
    let parts = if settings.redis.url.is_set() {
        on_redis(settings, &hub)?
    } else {
        Parts {
            bus: Arc::new(LocalBus::new(hub.clone())),
            tickets: Arc::new(LocalTickets::new(clock.clone())),
            limiter: super::conversation::local_limiter(settings, clock),
            ticket_rate: Arc::new(LocalRateLimiter::new(
                settings.realtime.tickets_per_minute,
                settings.realtime.ticket_burst,
                clock.clone(),
            )),
            health: None,
        }
    };
    // Disabling an account or changing its password closes its sockets on
    // every replica.
    auth.announce_revocations(parts.bus.clone());
    let r = &settings.realtime;
    let options = RealtimeOptions {
        enabled: r.enabled,
        ticket_ttl: Duration::from_secs(r.ticket_ttl_secs),
        ticket_skew: Duration::from_secs(r.ticket_skew_secs),
        queue_frames: r.queue_frames,
        max_sockets_per_user: r.max_sockets_per_user,
        snapshot_items: r.snapshot_items,
        ping_interval: Duration::from_secs(r.ping_interval_secs),
        pong_timeout: Duration::from_secs(r.pong_timeout_secs),
        max_frame_bytes: r.max_frame_bytes,
    };
    Ok(Shared {
        realtime: Arc::new(RealtimeService::new(
            RealtimeParts {
                hub,
                bus: parts.bus,
                tickets: parts.tickets,
                ticket_rate: parts.ticket_rate,
            },
            auth,
            options,
        )),
        limiter: parts.limiter,
        health: parts.health,
    })
}

struct Parts {
    bus: Arc<dyn EventBus>,
    tickets: Arc<dyn TicketStore>,
    limiter: Arc<dyn RateLimiter>,
    ticket_rate: Arc<dyn RateLimiter>,
    health: Option<Arc<dyn HealthCheck>>,
}

fn on_redis(settings: &Settings, hub: &Arc<Hub>) -> anyhow::Result<Parts> {
    let c = &settings.conversation;
    let redis = mongars_redis::Redis::new(
        settings.redis.url.expose(),
        &settings.redis.key_prefix,
        Duration::from_millis(settings.redis.timeout_ms),
    )
    .map_err(anyhow::Error::msg)?;
    tracing::info!("replica state (events, tickets, rate limits) on redis");
    Ok(Parts {
        bus: mongars_redis::RedisBus::start(redis.clone(), hub),
        tickets: Arc::new(mongars_redis::RedisTickets(redis.clone())),
        limiter: Arc::new(mongars_redis::RedisRateLimiter::new(
            redis.clone(),
            "chat",
            c.rate_limit_per_minute,
            c.rate_limit_burst,
        )),
        ticket_rate: Arc::new(mongars_redis::RedisRateLimiter::new(
            redis.clone(),
            "ticket",
            settings.realtime.tickets_per_minute,
            settings.realtime.ticket_burst,
        )),
        health: Some(Arc::new(mongars_redis::RedisHealth(redis))),
    })
}
