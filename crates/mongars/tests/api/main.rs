//! HTTP API tests through the real router, one module per area.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod common;

mod accounts;
mod adapter_switch;
mod backends;
mod connections;
mod console;
mod conversation;
mod edge;
mod embedding_per_turn;
mod hosts;
mod keys;
mod memory;
mod openai;
mod openapi;
mod operations;
mod peers;
mod prompt_window;
mod real_model;
mod realtime;
mod research;
mod revocation;
mod streaming;
mod throttle;
mod tls;
mod tokens;
mod training;
mod training_run;
mod turns;
mod upstream;
mod vault;
