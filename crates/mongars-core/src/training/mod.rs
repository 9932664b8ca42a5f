//! Learning on the device, the parts that need no model: personal data
//! found and replaced ([`pii`]), curation of samples and dataset versions
//! ([`curation`]), the queue of runs ([`runs`]), when the node is idle
//! ([`idle`]), and the adapter registry with its activation and rollback
//! ([`registry`]). The training itself is in `mongars-train`; runs are
//! carried out by the `mongars` crate.

/// The types of curation, runs and adapters (in the domain layer).
pub use crate::domain::training as model;
pub mod curation;
pub mod idle;
pub mod pii;
pub mod registry;
pub mod runs;
