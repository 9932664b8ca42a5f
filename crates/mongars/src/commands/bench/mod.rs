//! `mongars bench ...`: figures measured on this machine, each next to a
//! baseline run in the same process.

mod auth;
mod generate;
mod memory;
mod router;

pub use auth::run as auth;
pub use generate::run as generate;
pub use memory::run as memory;
pub use router::run as router;

/// The `p`-th percentile of `values` (nearest rank).
pub(crate) fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
}
