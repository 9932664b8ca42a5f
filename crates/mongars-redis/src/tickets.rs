//! Single-use WebSocket tickets in Redis: a ticket is written with an expiry
//! and read with `GETDEL`, so exactly one handshake on any replica gets it.

use crate::Redis;
use async_trait::async_trait;
use mongars_core::ports::{TicketClaims, TicketStore};
use std::time::Duration;

pub struct RedisTickets(pub Redis);

#[async_trait]
impl TicketStore for RedisTickets {
    async fn put(
        &self,
        ticket: &str,
        claims: &TicketClaims,
        valid_for: Duration,
    ) -> Result<(), String> {
        let value = serde_json::to_string(claims).map_err(|e| e.to_string())?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.0.key(&["ticket", ticket]))
            .arg(value)
            .arg("PX")
            .arg(valid_for.as_millis().max(1) as u64)
            .arg("NX");
        let _: Option<String> = self.0.run(&cmd).await?;
        Ok(())
    }

    async fn take(&self, ticket: &str) -> Result<Option<TicketClaims>, String> {
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.0.key(&["ticket", ticket]));
        let value: Option<String> = self.0.run(&cmd).await?;
        // A value this code did not write is treated as no ticket at all.
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }
}
