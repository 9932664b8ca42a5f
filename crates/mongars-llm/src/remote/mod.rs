//! Backends reached over HTTP: Ollama, OpenAI-compatible servers and Ray
//! Serve, all on one skeleton ([`RemoteBackend`]): the same constructor and
//! URL check, the same request → status → stream → parse path, the same
//! health shape. A protocol ([`Protocol`]) says only what differs: the
//! request body, where it is sent, how the answer is framed and how one line
//! of it reads, and how the server shows it serves the model.
//!
//! Every failure becomes an [`LlmError`] with a short, bounded message. Keys
//! are sent only in the `Authorization` header and never appear in errors:
//! whatever a server says about an error goes through [`scrub::scrub`]
//! before it reaches a log, a health report or a client.

mod backend;
mod lines;
pub mod ollama;
pub mod openai;
pub mod ray;
pub mod scrub;
mod wire;

pub use backend::{Conn, Ending, Framing, Protocol, Reader, RemoteBackend};
pub use lines::{Lines, MAX_LINE_BYTES, take_line};
pub use wire::transport;

use std::time::Duration;

/// Where and how to reach a remote backend.
#[derive(Clone)]
pub struct RemoteConfig {
    /// Name in settings, used in metrics and health.
    pub name: String,
    pub urls: Vec<String>,
    pub model: String,
    /// Bearer token, when the server wants one.
    pub api_key: Option<String>,
    pub context_tokens: usize,
    pub connect_timeout: Duration,
    /// Trust for `https://` URLs.
    pub tls: mongars_net::Tls,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("name", &self.name)
            .field("urls", &self.urls)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}
