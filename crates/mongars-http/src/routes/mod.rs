//! Handlers, one file per resource. Handlers parse input, call one core
//! service and shape the answer; no SQL and no business rules here.

pub mod adapters;
pub mod auth;
pub mod console;
pub mod conversation;
pub mod embeddings;
pub mod health;
pub mod llm;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod openai;
pub mod peers;
pub mod profile;
pub mod review;
pub mod runs;
pub mod training;
pub mod ui;
pub mod users;
