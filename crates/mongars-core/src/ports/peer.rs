//! Peers: their storage, and the node's peer service as the admin API and
//! the command line use it (the links themselves live in `mongars-peer`).

use super::RepoError;
use crate::domain::{NodeLoad, PeerRecord, PeerView, Telemetry};
use crate::error::CoreError;
use async_trait::async_trait;

/// The registered peers, shared by every replica through the database.
#[async_trait]
pub trait PeerRepository: Send + Sync {
    /// Every registered peer, by URL.
    async fn list(&self) -> Result<Vec<PeerRecord>, RepoError>;
    /// Register `url`, or change its fingerprint when it is known.
    async fn upsert(&self, peer: &PeerRecord) -> Result<PeerRecord, RepoError>;
    /// Forget `url`; `false` when it was not registered.
    async fn remove(&self, url: &str) -> Result<bool, RepoError>;
}

/// This node's peer service.
#[async_trait]
pub trait PeerDirectory: Send + Sync {
    /// This node's id (its certificate's SPKI fingerprint).
    fn node_id(&self) -> String;
    /// Register a peer (both parts parsed at the edge); it is used at once.
    async fn register(&self, url: &str, fingerprint: &str) -> Result<PeerView, CoreError>;
    /// Forget a peer; traffic to it stops at once. `NotFound` when unknown.
    async fn unregister(&self, url: &str) -> Result<(), CoreError>;
    /// Every registered peer with its state, last report and load.
    async fn list(&self) -> Result<Vec<PeerView>, CoreError>;
    /// This node's load now.
    async fn load(&self) -> NodeLoad;
    /// This node's telemetry, then the latest report of each other source.
    fn telemetry(&self) -> Vec<Telemetry>;
    /// Keep a report from another source (the latest per source wins).
    fn record_telemetry(&self, report: Telemetry) -> Result<(), CoreError>;
}
