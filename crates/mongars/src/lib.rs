//! The `mongars` binary as a library: the CLI, the app assembly that the
//! tests share with `mongars serve`, and start-up helpers.

pub mod app;
pub mod cli;
pub mod commands;
pub mod hardware;
pub mod instance;
pub mod jwt_key;
pub mod limits;
pub mod llm;
pub mod mind;
pub mod net;
pub mod observe;
pub mod realtime;
pub mod recovery;
pub mod telemetry;
