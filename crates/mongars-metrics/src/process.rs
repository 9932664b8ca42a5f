//! The process's own figures under the names Prometheus client libraries use
//! (`process_resident_memory_bytes`, `process_open_fds`, ...), read from
//! `/proc/self` at each collection, plus gauges other parts of the program
//! sample on demand ([`super::Metrics::sampled`], SQLite's heap say), and
//! glibc's account of the C heap. Where `/proc` is missing (not Linux) the
//! process figures are simply absent.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, GaugeVec, Opts};
use std::sync::Mutex;

/// `USER_HZ`: the unit of `/proc/*/stat` times, 100 on every Linux ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// Figures of one reading of `/proc/self`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessFigures {
    pub resident_bytes: f64,
    pub anon_bytes: f64,
    pub file_bytes: f64,
    pub shmem_bytes: f64,
    pub virtual_bytes: f64,
    pub threads: f64,
    pub open_fds: f64,
    pub max_fds: f64,
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
}

impl ProcessFigures {
    /// Read this process's figures; `None` where `/proc` cannot be read.
    pub fn read() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let mut f = Self::parse(&status, &stat, &limits, &boot)?;
        // The directory handle that listed them is one of them.
        f.open_fds = fds.saturating_sub(1) as f64;
        Some(f)
    }

    /// The figures in `/proc/self/{status,stat,limits}` and `/proc/stat`.
    pub fn parse(status: &str, stat: &str, limits: &str, boot: &str) -> Option<Self> {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map(|v| v * 1024.0)
        };
        // Fields after the command name, which may itself hold spaces and ')'.
        let after = &stat[stat.rfind(')')? + 1..];
        let field = |n: usize| -> Option<f64> {
            // `after` starts at field 3 (state).
            after.split_whitespace().nth(n - 3)?.parse().ok()
        };
        let btime = boot
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        let max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        Some(Self {
            resident_bytes: kib("VmRSS:")?,
            anon_bytes: kib("RssAnon:").unwrap_or(0.0),
            file_bytes: kib("RssFile:").unwrap_or(0.0),
            shmem_bytes: kib("RssShmem:").unwrap_or(0.0),
            virtual_bytes: kib("VmSize:").unwrap_or(0.0),
            threads: field(20).unwrap_or(0.0),
            open_fds: 0.0,
            max_fds,
            cpu_seconds: (field(14)? + field(15)?) / TICKS_PER_SECOND,
            start_time_seconds: btime + field(22).unwrap_or(0.0) / TICKS_PER_SECOND,
        })
    }
}

/// The C heap's own account (glibc's `mallinfo2`, summed over its arenas):
/// bytes handed out, and bytes kept free inside the arenas. Resident memory
/// that grows while the bytes handed out stay flat is fragmentation or
/// arenas keeping freed memory, not a leak.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn heap_figures() -> Option<(f64, f64)> {
    // SAFETY: mallinfo2 takes nothing and returns a plain struct of counts;
    // glibc locks each arena in turn while it sums them.
    let m = unsafe { libc::mallinfo2() };
    Some(((m.uordblks + m.hblkhd) as f64, m.fordblks as f64))
}

/// No such account outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn heap_figures() -> Option<(f64, f64)> {
    None
}

/// Hand the C heap's free pages back to the system (glibc's
/// `malloc_trim`). glibc's arenas keep what threads free for later; under
/// traffic that allocates on many threads, resident memory creeps up by
/// what they keep while the bytes in use stay flat. `true` when some
/// memory was returned.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_heap() -> bool {
    // SAFETY: malloc_trim takes a byte count to keep at the top of the
    // heap and only gives back pages no allocation uses; glibc locks each
    // arena while it works.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Nothing to do outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_heap() -> bool {
    false
}

/// Cap the number of glibc heap arenas at `arenas` (glibc's `mallopt
/// M_ARENA_MAX`). Left alone, glibc gives a thread that finds the existing
/// arenas busy a new one, up to eight per core; every arena keeps the
/// partly used pages its threads leave behind, which `malloc_trim` cannot
/// give back, so resident memory creeps under traffic that hops between
/// many threads. `true` when glibc took the value.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_heap_arenas(arenas: usize) -> bool {
    let arenas = libc::c_int::try_from(arenas.max(1)).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt sets one of glibc's malloc parameters under its own
    // lock; M_ARENA_MAX only bounds arenas created from now on.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

/// Nothing to do outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_heap_arenas(_arenas: usize) -> bool {
    false
}

/// Fix glibc's mmap threshold at `mmap` bytes and its trim threshold at
/// `trim` (`mallopt` of `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD`), which
/// also stops glibc from raising them as large blocks are freed. The trim
/// threshold is the free space an arena may keep at its top: `malloc_trim`
/// gives back free pages inside every arena but the top only of the first,
/// so a thread's arena whose top grew in a burst stays that large until its
/// top's free space exceeds it. `true` when glibc took both.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn pin_heap_thresholds(mmap: usize, trim: usize) -> bool {
    let mmap = libc::c_int::try_from(mmap).unwrap_or(libc::c_int::MAX);
    let trim = libc::c_int::try_from(trim).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt sets one of glibc's malloc parameters under its own
    // lock; both apply to allocations and frees from now on.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, trim) == 1
    }
}

/// Nothing to do outside glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn pin_heap_thresholds(_mmap: usize, _trim: usize) -> bool {
    false
}

fn gauge(name: &str, help: &str) -> Gauge {
    Gauge::new(name, help).expect("valid gauge")
}

/// One process gauge and how it reads its value from the figures.
type Reading = (Gauge, fn(&ProcessFigures) -> f64);

/// Collects [`ProcessFigures`] at each gather.
pub(crate) struct ProcessCollector {
    gauges: Vec<Reading>,
    /// The kernel's running total, added to by what it grew since the last
    /// collection.
    cpu: Counter,
    cpu_seen: Mutex<f64>,
    resident: GaugeVec,
    heap: GaugeVec,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub(crate) fn new() -> Self {
        let gauges: Vec<Reading> = vec![
            (
                gauge(
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes.",
                ),
                |f| f.resident_bytes,
            ),
            (
                gauge(
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes.",
                ),
                |f| f.virtual_bytes,
            ),
            (
                gauge("process_open_fds", "Number of open file descriptors."),
                |f| f.open_fds,
            ),
            (
                gauge(
                    "process_max_fds",
                    "Maximum number of open file descriptors.",
                ),
                |f| f.max_fds,
            ),
            (
                gauge(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                ),
                |f| f.start_time_seconds,
            ),
            (
                gauge("process_threads", "Number of OS threads in the process."),
                |f| f.threads,
            ),
        ];
        let resident = GaugeVec::new(
            Opts::new(
                "mongars_process_resident_bytes",
                "Resident memory by kind: anon (heap and stacks), file (mapped files and the binary), shmem.",
            ),
            &["kind"],
        )
        .expect("valid gauge");
        let heap = GaugeVec::new(
            Opts::new(
                "mongars_process_heap_bytes",
                "The C heap by state (glibc): in_use (handed out), free (kept in its arenas).",
            ),
            &["state"],
        )
        .expect("valid gauge");
        let cpu = Counter::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        )
        .expect("valid counter");
        let mut descs: Vec<Desc> = gauges
            .iter()
            .flat_map(|(g, _)| g.desc().into_iter().cloned())
            .collect();
        descs.extend(cpu.desc().into_iter().cloned());
        descs.extend(resident.desc().into_iter().cloned());
        descs.extend(heap.desc().into_iter().cloned());
        Self {
            gauges,
            cpu,
            cpu_seen: Mutex::new(0.0),
            resident,
            heap,
            descs,
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Some(f) = ProcessFigures::read() else {
            return Vec::new();
        };
        for (kind, v) in [
            ("anon", f.anon_bytes),
            ("file", f.file_bytes),
            ("shmem", f.shmem_bytes),
        ] {
            self.resident.with_label_values(&[kind]).set(v);
        }
        let mut out: Vec<MetricFamily> = self
            .gauges
            .iter()
            .flat_map(|(g, read)| {
                g.set(read(&f));
                g.collect()
            })
            .collect();
        {
            let mut seen = self.cpu_seen.lock().unwrap_or_else(|p| p.into_inner());
            if f.cpu_seconds > *seen {
                self.cpu.inc_by(f.cpu_seconds - *seen);
                *seen = f.cpu_seconds;
            }
        }
        out.extend(self.cpu.collect());
        out.extend(self.resident.collect());
        if let Some((in_use, free)) = heap_figures() {
            self.heap.with_label_values(&["in_use"]).set(in_use);
            self.heap.with_label_values(&["free"]).set(free);
            out.extend(self.heap.collect());
        }
        out
    }
}

/// A gauge whose value is asked for at each gather.
pub(crate) struct Sampled {
    gauge: Gauge,
    sample: Mutex<Box<dyn Fn() -> f64 + Send>>,
}

impl Sampled {
    pub(crate) fn new(
        name: &str,
        help: &str,
        sample: Box<dyn Fn() -> f64 + Send>,
    ) -> Result<Self, String> {
        Ok(Self {
            gauge: Gauge::new(name, help).map_err(|e| e.to_string())?,
            sample: Mutex::new(sample),
        })
    }
}

impl Collector for Sampled {
    fn desc(&self) -> Vec<&Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let value = (self.sample.lock().unwrap_or_else(|p| p.into_inner()))();
        self.gauge.set(value);
        self.gauge.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tmongars\nVmSize:\t  812340 kB\nVmRSS:\t  250880 kB\nRssAnon:\t  200000 kB\nRssFile:\t   50000 kB\nRssShmem:\t     880 kB\nThreads:\t12\n";
    // Field 2 holds a space and a ')', as command names may.
    const STAT: &str = "4242 (tokio rt) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 12 0 5000 831836160 62720 18446744073709551615";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";

    #[test]
    fn reads_the_proc_files() {
        let f = ProcessFigures::parse(STATUS, STAT, LIMITS, "cpu 1 2 3\nbtime 1700000000\n")
            .expect("parsed");
        assert_eq!(f.resident_bytes, 250_880.0 * 1024.0);
        assert_eq!(f.anon_bytes, 200_000.0 * 1024.0);
        assert_eq!(f.file_bytes, 50_000.0 * 1024.0);
        assert_eq!(f.shmem_bytes, 880.0 * 1024.0);
        assert_eq!(f.virtual_bytes, 812_340.0 * 1024.0);
        assert_eq!(f.cpu_seconds, 4.0);
        assert_eq!(f.threads, 12.0);
        assert_eq!(f.start_time_seconds, 1_700_000_050.0);
        assert_eq!(f.max_fds, 1024.0);
        assert!(ProcessFigures::parse("", STAT, LIMITS, "").is_none());
        assert!(ProcessFigures::parse(STATUS, "garbage", LIMITS, "").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_figures() {
        let f = ProcessFigures::read().expect("/proc is readable on Linux");
        assert!(f.resident_bytes > 0.0 && f.resident_bytes <= f.virtual_bytes);
        assert!(f.open_fds >= 3.0 && f.max_fds >= f.open_fds);
        assert!(f.threads >= 1.0 && f.start_time_seconds > 1.0e9);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_heap_counts_what_is_handed_out() {
        let (before, _) = heap_figures().expect("glibc");
        let held: Vec<u8> = vec![1; 64 << 20];
        let (during, _) = heap_figures().expect("glibc");
        assert!(during >= before + (32 << 20) as f64, "{before} -> {during}");
        drop(held);
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn free_pages_go_back_to_the_system() {
        let anon = || ProcessFigures::read().expect("/proc").anon_bytes;
        // ~100 MB in small blocks (from an arena, not mapped one by one),
        // then one more that keeps the arena from shrinking by itself.
        let blocks: Vec<Vec<u8>> = (0..100_000).map(|i| vec![(i % 251) as u8; 1000]).collect();
        let pin = vec![1u8; 1000];
        drop(blocks);
        let kept = anon();
        release_free_heap();
        let after = anon();
        assert!(
            after + 40.0 * 1048576.0 < kept,
            "resident anonymous memory {kept} -> {after}"
        );
        drop(pin);
    }
}
