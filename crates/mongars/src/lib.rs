//! The `mongars` binary as a library: the CLI, the app assembly that the
//! tests share with `mongars serve`, and start-up helpers.

pub mod app;
pub mod background;
pub mod cli;
pub mod commands;
pub mod hardware;
pub mod instance;
pub mod jwt_key;
pub mod limits;
pub mod observe;
pub mod recovery;
pub mod telemetry;
pub mod training;
pub mod vault;
pub mod wiring;
