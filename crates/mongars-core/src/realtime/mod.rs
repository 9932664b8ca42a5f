//! Realtime sessions: single-use tickets that open a WebSocket, the events a
//! socket hears, and the sockets of this process.
//!
//! A turn's tail publishes events on the [`EventBus`]; the bus brings them
//! to the [`Hub`] of every replica (directly in one process, through Redis
//! across several), and the hub queues them on each socket of that user.

mod hub;
mod local;

pub use hub::{Cutoff, Hub, Outbox, Subscription};
pub use local::{LocalBus, LocalTickets};

use crate::auth::{AuthService, Principal};
use crate::domain::Username;
use crate::error::CoreError;
use crate::ports::{EventBus, RateLimiter, TicketClaims, TicketStore};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RealtimeOptions {
    /// Off: no tickets, no sockets, no events.
    pub enabled: bool,
    /// How long a ticket is good for, as told to the client.
    pub ticket_ttl: Duration,
    /// Extra time a ticket is still accepted, for clock and network skew.
    pub ticket_skew: Duration,
    /// Frames queued per socket before it is closed as too slow (1013).
    pub queue_frames: usize,
    /// Sockets one user may hold on one replica.
    pub max_sockets_per_user: usize,
    /// Turns replayed in `history.snapshot`.
    pub snapshot_items: u32,
    pub ping_interval: Duration,
    /// A socket silent for this long is closed (1011).
    pub pong_timeout: Duration,
    /// Largest frame accepted from a client.
    pub max_frame_bytes: usize,
}

pub struct RealtimeService {
    hub: Arc<Hub>,
    bus: Arc<dyn EventBus>,
    tickets: Arc<dyn TicketStore>,
    /// Tickets each user may take (shared by replicas on Redis).
    ticket_rate: Arc<dyn RateLimiter>,
    auth: Arc<AuthService>,
    options: RealtimeOptions,
}

/// The parts a [`RealtimeService`] is made of.
pub struct RealtimeParts {
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn EventBus>,
    pub tickets: Arc<dyn TicketStore>,
    pub ticket_rate: Arc<dyn RateLimiter>,
}

/// Length in bytes of a ticket's randomness (sent as hex).
const TICKET_BYTES: usize = 32;

/// Whether `ticket` has the shape of one this server issues (64 lowercase
/// hex digits), checked before any store is asked about it.
pub fn ticket_well_formed(ticket: &str) -> bool {
    ticket.len() == TICKET_BYTES * 2
        && ticket
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl RealtimeService {
    pub fn new(parts: RealtimeParts, auth: Arc<AuthService>, options: RealtimeOptions) -> Self {
        Self {
            hub: parts.hub,
            bus: parts.bus,
            tickets: parts.tickets,
            ticket_rate: parts.ticket_rate,
            auth,
            options,
        }
    }

    pub fn auth(&self) -> &Arc<AuthService> {
        &self.auth
    }

    pub fn options(&self) -> &RealtimeOptions {
        &self.options
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn bus(&self) -> &Arc<dyn EventBus> {
        &self.bus
    }

    /// A fresh single-use ticket for `who`, and its lifetime in seconds.
    /// Rate limited per user (429 past `realtime.tickets_per_minute`).
    pub async fn issue_ticket(&self, who: &Principal) -> Result<(String, u64), CoreError> {
        if !self.options.enabled {
            return Err(CoreError::Disabled("Realtime events"));
        }
        self.ticket_rate
            .acquire(who.id)
            .await
            .map_err(|retry_after_secs| CoreError::RateLimited { retry_after_secs })?;
        let mut raw = [0u8; TICKET_BYTES];
        getrandom::fill(&mut raw).map_err(|e| CoreError::Internal(format!("rng: {e}")))?;
        let ticket: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let claims = TicketClaims {
            user_id: who.id,
            username: who.username.clone(),
            version: who.version,
            key_id: who.key_id.clone(),
        };
        self.tickets
            .put(
                &ticket,
                &claims,
                self.options.ticket_ttl + self.options.ticket_skew,
            )
            .await
            .map_err(CoreError::Unavailable)?;
        Ok((ticket, self.options.ticket_ttl.as_secs()))
    }

    /// Use up `ticket` and return whom it opens a socket for. Refused when
    /// the ticket is malformed, unknown, used or expired, or when its
    /// account has since been disabled or had its tokens revoked.
    pub async fn redeem(&self, ticket: &str) -> Result<Principal, CoreError> {
        if !ticket_well_formed(ticket) {
            return Err(CoreError::TicketInvalid);
        }
        let claims = self
            .tickets
            .take(ticket)
            .await
            .map_err(CoreError::Unavailable)?
            .ok_or(CoreError::TicketInvalid)?;
        let name = Username::parse(&claims.username).map_err(|_| CoreError::TicketInvalid)?;
        let user = match self.auth.find(&name).await {
            Ok(user) => user,
            Err(CoreError::NotFound(_)) => return Err(CoreError::TicketInvalid),
            Err(e) => return Err(e),
        };
        if user.disabled || user.id != claims.user_id || user.token_version != claims.version {
            return Err(CoreError::TicketInvalid);
        }
        let who = Principal {
            id: user.id,
            username: user.username,
            role: user.role,
            version: user.token_version,
            key_id: claims.key_id,
        };
        // A ticket taken with an API key dies with the key.
        if who.key_id.is_some() && !self.auth.still_valid(&who).await? {
            return Err(CoreError::TicketInvalid);
        }
        Ok(who)
    }

    /// Register a socket of `who`, unless they already hold the most allowed.
    pub fn subscribe(&self, who: &Principal) -> Result<Subscription, CoreError> {
        if self.hub.sockets_of(who.id) >= self.options.max_sockets_per_user {
            return Err(CoreError::TooManySockets);
        }
        Ok(self.hub.subscribe(who.id, self.options.queue_frames))
    }
}
