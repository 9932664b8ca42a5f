//! Storage for monGARS on SQLite (the embedded default) or PostgreSQL.
//!
//! [`Database`] owns the connection pool and the embedded migrations; the
//! repositories implement the core's port traits. SQL is written once, with
//! `$N` placeholders that both engines accept, and run on either pool by the
//! `on_pool!` macro; only the migrations differ per engine.

mod api_keys;
mod bigint;
mod busy;
mod db;
mod error;
mod health;
mod heap;
mod integrity;
mod memories;
mod peers;
#[cfg(test)]
mod plans;
mod profiles;
#[cfg(feature = "testing")]
pub mod testing;
mod throttle;
mod training;
mod turns;
mod users;

pub use api_keys::SqlApiKeyRepository;
pub use db::{Database, DbConfig, DbTarget, MigrationStatus};
pub use error::StoreError;
pub use health::{DatabaseCheck, MigrationsCheck};
pub use heap::sqlite_heap;
pub use integrity::integrity_problems;
pub use memories::SqlMemoryRepository;
pub use peers::SqlPeerRepository;
pub use throttle::SqlThrottleStore;
pub use training::{SqlAdapterRepository, SqlCurationRepository, SqlRunRepository};
pub use turns::{SqlTurnRepository, all_turns};
pub use users::SqlUserRepository;
