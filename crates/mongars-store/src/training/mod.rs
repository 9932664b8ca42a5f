//! Storage of training data and adapters: consent and feedback, curated
//! samples and dataset versions ([`curation`]), and the adapter registry
//! with its activation history ([`adapters`]).

mod adapters;
mod curation;
mod runs;

pub use adapters::SqlAdapterRepository;
pub use curation::SqlCurationRepository;
pub use runs::SqlRunRepository;
