//! The C heap's arenas, bounded once at start-up.
//!
//! glibc gives threads that find the heap busy arenas of their own, up to
//! eight per core. The server's work hops between many threads (the
//! runtime's workers, the blocking pool, SQLite's, the engines'), and each
//! arena keeps the partly used pages left in it, so over hours resident
//! memory creeps while the bytes in use stay flat. [`limit`] caps the
//! arenas at the usable CPUs (at least two, at most eight), unless the
//! operator chose a count with glibc's own `MALLOC_ARENA_MAX`.

/// glibc's own variable, read by glibc itself at start-up.
pub const VARIABLE: &str = "MALLOC_ARENA_MAX";

/// The arena cap to set: `None` when the operator chose one (glibc applied
/// it already), else the usable CPUs within 2..=8.
pub fn choose(explicit: Option<&str>, usable_cpus: usize) -> Option<usize> {
    match explicit.and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => None,
        _ => Some(usable_cpus.clamp(2, 8)),
    }
}

/// Bound the heap's arenas for the whole process; the cap set, if any.
#[allow(clippy::disallowed_methods)] // glibc's knob, not a setting
pub fn limit(usable_cpus: usize) -> Option<usize> {
    let explicit = std::env::var(VARIABLE).ok();
    let arenas = choose(explicit.as_deref(), usable_cpus)?;
    mongars_metrics::limit_heap_arenas(arenas).then_some(arenas)
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn the_operator_s_variable_is_left_to_glibc() {
        assert_eq!(choose(Some("4"), 2), None);
        assert_eq!(choose(Some(" 1 "), 16), None);
    }

    #[test]
    fn otherwise_the_usable_cpus_within_two_and_eight() {
        assert_eq!(choose(None, 1), Some(2));
        assert_eq!(choose(None, 2), Some(2));
        assert_eq!(choose(None, 6), Some(6));
        assert_eq!(choose(None, 64), Some(8));
        assert_eq!(choose(Some("0"), 4), Some(4));
        assert_eq!(choose(Some("many"), 3), Some(3));
    }
}
