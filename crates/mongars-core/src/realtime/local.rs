//! The in-process event bus and ticket store, for a single replica.

use super::hub::Hub;
use crate::ports::{Clock, Event, EventBus, TicketClaims, TicketStore};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events go straight to this process's sockets.
pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self { hub }
    }
}

impl EventBus for LocalBus {
    fn publish(&self, event: Event) {
        self.hub.deliver(event.user_id, &event.frame);
    }

    fn revoke(&self, user_id: i64) {
        self.hub.revoke(user_id);
    }
}

/// Tickets kept in this process; expired ones are swept as new ones come.
pub struct LocalTickets {
    tickets: Mutex<HashMap<String, (TicketClaims, Instant)>>,
    clock: Arc<dyn Clock>,
}

impl LocalTickets {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            tickets: Mutex::default(),
            clock,
        }
    }
}

/// Tickets held before expired ones are swept.
const SWEEP_AT: usize = 1024;

#[async_trait]
impl TicketStore for LocalTickets {
    async fn put(
        &self,
        ticket: &str,
        claims: &TicketClaims,
        valid_for: Duration,
    ) -> Result<(), String> {
        let now = self.clock.instant();
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        if tickets.len() >= SWEEP_AT {
            tickets.retain(|_, (_, until)| *until > now);
        }
        tickets.insert(ticket.to_string(), (claims.clone(), now + valid_for));
        Ok(())
    }

    async fn take(&self, ticket: &str) -> Result<Option<TicketClaims>, String> {
        let now = self.clock.instant();
        let mut tickets = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        Ok(tickets
            .remove(ticket)
            .filter(|(_, until)| *until > now)
            .map(|(claims, _)| claims))
    }
}
