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
//!
//! [`pin_thresholds`] then fixes glibc's mmap threshold at 32 MiB and its
//! trim threshold at 128 KiB, glibc's own starting value. Left alone, glibc
//! raises both the first time a large block is freed (the models' load
//! buffers: to 19 and 38 MiB with the embedded defaults), and from then on
//! each arena but the first keeps up to 38 MiB of free space at its top,
//! which `malloc_trim` does not give back: a burst that reaches higher than
//! the last leaves its pages resident, and resident memory climbs by steps
//! while the bytes in use stay flat. Blocks under 32 MiB (the embedder's
//! batches) still come from the arenas, so nothing is mapped and unmapped
//! per call, as pinning both at 128 KiB would.

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

/// glibc's own variables for its thresholds; any of them set, the
/// operator chose and [`pin_thresholds`] leaves glibc's values alone.
pub const THRESHOLD_VARIABLES: [&str; 3] = [
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
];

/// Blocks from this size up are mapped on their own (glibc's largest).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free space an arena may keep at its top (glibc's starting value).
pub const TRIM_THRESHOLD: usize = 128 << 10;

/// Whether to pin the thresholds: not when the operator set one, through
/// glibc's variables or its tunables.
pub fn pin_wanted(set: &[Option<String>], tunables: Option<&str>) -> bool {
    let tuned = tunables.is_some_and(|t| t.contains("_threshold") || t.contains("top_pad"));
    !tuned && set.iter().all(Option::is_none)
}

/// Fix glibc's mmap and trim thresholds (see the module's docs) unless the
/// operator set them; `true` when pinned.
#[allow(clippy::disallowed_methods)] // glibc's knobs, not settings
pub fn pin_thresholds() -> bool {
    let set: Vec<Option<String>> = THRESHOLD_VARIABLES
        .iter()
        .map(|v| std::env::var(v).ok())
        .collect();
    let tunables = std::env::var("GLIBC_TUNABLES").ok();
    pin_wanted(&set, tunables.as_deref())
        && mongars_metrics::pin_heap_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::{choose, pin_wanted};

    #[test]
    fn thresholds_are_pinned_unless_the_operator_set_one() {
        assert!(pin_wanted(&[None, None, None], None));
        assert!(pin_wanted(
            &[None, None, None],
            Some("glibc.malloc.arena_max=4")
        ));
        assert!(!pin_wanted(&[None, Some("131072".into()), None], None));
        assert!(!pin_wanted(
            &[None, None, None],
            Some("glibc.malloc.mmap_threshold=65536")
        ));
        assert!(!pin_wanted(
            &[None, None, None],
            Some("glibc.malloc.top_pad=0")
        ));
    }

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
