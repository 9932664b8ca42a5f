//! Peers: nodes of one installation that know each other, talk over
//! mutually authenticated TLS, share their load and hand generation to the
//! least loaded.
//!
//! - [`identity`]: the node's key pair and certificate; the SHA-256 of its
//!   public key is the node id.
//! - [`trust`]: who is accepted on the peer listener and who is called
//!   (registered fingerprints, or the installation's CA).
//! - [`server`]: the peer listener and its API (load, generation).
//! - [`client`]: calls to one peer; a generation is a backend the router
//!   guards like any other (breaker, retries, timeouts, metrics).
//! - [`node`] and [`directory`]: the member list, the choice of a peer per
//!   request (the router's `peers` pool) and the admin view.
//! - [`exchange`]: the periodic load push and discovery.
//! - [`wire`]: the peer messages, parsed at the edge.

pub mod client;
mod der;
pub mod directory;
pub mod exchange;
pub mod identity;
pub mod node;
pub mod server;
pub mod status;
pub mod tally;
pub mod trust;
pub mod wire;

pub use directory::Peers;
pub use identity::NodeIdentity;
pub use node::{PeerNode, PeerOptions};
pub use tally::Tally;
