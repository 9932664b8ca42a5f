//! What goes into training data: personal data found and replaced before
//! any sample enters a dataset ([`pii`]).

pub mod pii;
