//! Learning on the device, the parts that need no model: personal data
//! found and replaced ([`pii`]), curation of samples and dataset versions
//! ([`curation`]), and the adapter registry with its activation and
//! rollback ([`registry`]). The training itself is in `mongars-train`.

pub mod curation;
pub mod idle;
pub mod model;
pub mod pii;
pub mod registry;
pub mod runs;
