//! Wiring: every part of the application built from settings, one concern
//! per file. `app::build` calls these in order; commands that need one part
//! (a user command needs the auth service, a bench the router) call the one
//! they need. Every builder that keeps time takes the application's clock.

pub mod auth;
pub mod conversation;
pub mod database;
pub mod llm;
pub mod mind;
pub mod net;
pub mod peers;
pub mod realtime;
pub mod training;

use mongars_core::ports::{Clock, SystemClock};
use std::sync::Arc;

/// The system's clock, as every builder takes it.
pub fn system_clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}
