//! The embedder's compute threads, fixed once at start-up.
//!
//! candle (the embedder) and rayon size their thread pools from
//! `RAYON_NUM_THREADS`. Unset, candle counts the physical cores on every
//! matrix product by reading `/proc/cpuinfo` (thousands of opens a second
//! under load) and counts the host's cores whatever CPU quota the container
//! has. [`pin`] sets it once, to the CPUs this process may use, unless the
//! operator set it already.

/// The variable candle and rayon read.
pub const VARIABLE: &str = "RAYON_NUM_THREADS";

/// The thread count to use: the operator's, when it is a positive number,
/// else the usable CPUs. `true` when it is the operator's.
pub fn choose(explicit: Option<&str>, usable_cpus: usize) -> (usize, bool) {
    match explicit.and_then(|v| v.trim().parse::<usize>().ok()) {
        Some(n) if n > 0 => (n, true),
        _ => (usable_cpus.max(1), false),
    }
}

/// Fix the compute threads for the whole process; returns the count.
///
/// Call it from `main` before any other thread exists: changing the
/// environment is only sound while nothing else can read it.
#[allow(unsafe_code, clippy::disallowed_methods)] // a library's knob, not a setting
pub fn pin(usable_cpus: usize) -> usize {
    let current = std::env::var(VARIABLE).ok();
    let (threads, explicit) = choose(current.as_deref(), usable_cpus);
    if !explicit {
        // SAFETY: called first thing in `main`, before the runtime, the
        // logger or anything else has started a thread.
        unsafe { std::env::set_var(VARIABLE, threads.to_string()) };
    }
    threads
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn the_operator_s_count_wins_when_it_is_a_positive_number() {
        assert_eq!(choose(Some("3"), 2), (3, true));
        assert_eq!(choose(Some(" 1 "), 8), (1, true));
    }

    #[test]
    fn otherwise_the_usable_cpus() {
        assert_eq!(choose(None, 2), (2, false));
        assert_eq!(choose(Some("0"), 4), (4, false));
        assert_eq!(choose(Some("many"), 1), (1, false));
        assert_eq!(choose(None, 0), (1, false));
    }
}
