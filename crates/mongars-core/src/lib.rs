//! The core of monGARS: domain types, services and the port traits they need.
//!
//! Nothing here opens a socket or a file: storage, HTTP and inference are
//! adapters in other crates that implement the traits in [`ports`]. Services
//! are plain structs built once at start-up and shared behind `Arc`s.

pub mod auth;
pub mod conversation;
pub mod curiosity;
pub mod domain;
pub mod error;
pub mod memory;
pub mod pending;
pub mod personality;
pub mod ports;
pub mod ratelimit;
pub mod realtime;
pub mod suggest;
pub mod text;
pub mod training;

pub use error::CoreError;
