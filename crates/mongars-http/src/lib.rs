//! The HTTP surface of monGARS, on axum.
//!
//! [`router`] lists every route; handlers live in `routes/`, one file per
//! resource; [`error::ApiError`] is the only place errors become statuses and
//! bodies. Handlers call core services through [`AppState`] and never touch
//! storage directly.

pub mod edge;
pub mod error;
pub mod extract;
pub mod host;
pub mod listener;
pub mod middleware;
pub mod openapi;
pub mod origin;
pub mod router;
pub mod routes;
pub mod state;
pub mod ws;

pub use host::HostPolicy;
pub use origin::OriginPolicy;
pub use router::router;
pub use routes::metrics::listener_router as metrics_listener_router;
pub use state::{AppState, HttpOptions, TrainingState};
