//! The C heap's arenas, bounded once at start-up.
//!
//! glibc gives threads that find the heap busy arenas of their own, up to
//! eight per core of the host, whatever CPU quota a container has. The
//! server's work hops between many threads (the runtime's workers, the
//! blocking pool, one per SQLite connection, the engines'), and each arena
//! keeps the partly used pages left in it, so resident memory grows with
//! the arenas while the bytes in use stay flat. [`limit`] caps them at four
//! per usable CPU (cgroup quota included), between 8 and 64, unless the
//! operator chose a count with glibc's own `MALLOC_ARENA_MAX`.
//!
//! Fewer is not free: every arena is locked while a thread allocates from
//! it, and the chat path allocates on many threads. On 2 cores (`mongars
//! bench chat --memory off`, against glibc's 16 arenas in the same run) 8
//! arenas served 97-100 % of the chats per second, 4 about 90 % and 2 about
//! 80 %, for 5 and 21 MiB less resident memory under the soak.

/// glibc's own variable, read by glibc itself at start-up.
pub const VARIABLE: &str = "MALLOC_ARENA_MAX";

/// The arena cap to set: `None` when the operator chose one (glibc applied
/// it already), else four per usable CPU within 8..=64.
pub fn choose(explicit: Option<&str>, usable_cpus: usize) -> Option<usize> {
    match explicit.and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => None,
        _ => Some(usable_cpus.saturating_mul(4).clamp(8, 64)),
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
    fn otherwise_four_per_usable_cpu_within_eight_and_sixty_four() {
        assert_eq!(choose(None, 1), Some(8));
        assert_eq!(choose(None, 2), Some(8));
        assert_eq!(choose(None, 6), Some(24));
        assert_eq!(choose(None, 64), Some(64));
        assert_eq!(choose(Some("0"), 4), Some(16));
        assert_eq!(choose(Some("many"), 3), Some(12));
    }
}
