//! What machine this is: board (Raspberry Pi, Jetson), CPUs and memory,
//! including cgroup limits inside containers; [`tuning`] chooses the
//! settings that follow from it.

pub mod compute;
pub mod heap;
pub mod tuning;

use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct HardwareProfile {
    /// Board model when recognisable ("Raspberry Pi 4 Model B Rev 1.4").
    pub board: Option<String>,
    pub kind: MachineKind,
    /// CPUs the OS reports for this process.
    pub cpus: usize,
    /// CPU quota of the cgroup, in CPUs, when one is set.
    pub cgroup_cpus: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// Memory limit of the cgroup, when one is set.
    pub cgroup_memory_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKind {
    RaspberryPi,
    Jetson,
    Generic,
}

impl HardwareProfile {
    pub fn detect() -> Self {
        Self::detect_in(Path::new("/"))
    }

    /// Detect with every path taken under `root` (tests use a fake tree).
    pub fn detect_in(root: &Path) -> Self {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).ok();
        let board =
            read("proc/device-tree/model").map(|s| s.trim_end_matches('\0').trim().to_string());
        let kind = match (&board, read("etc/nv_tegra_release")) {
            (_, Some(_)) => MachineKind::Jetson,
            (Some(b), _) if b.contains("Raspberry Pi") => MachineKind::RaspberryPi,
            (Some(b), _) if b.contains("Jetson") || b.contains("NVIDIA") => MachineKind::Jetson,
            _ => MachineKind::Generic,
        };
        // cgroup v2 (unified), else v1 (cpu and memory controllers).
        let cgroup_cpus = read("sys/fs/cgroup/cpu.max")
            .and_then(|s| parse_cpu_max(&s))
            .or_else(|| {
                let quota = read("sys/fs/cgroup/cpu/cpu.cfs_quota_us")?;
                let period = read("sys/fs/cgroup/cpu/cpu.cfs_period_us")?;
                parse_cfs(&quota, &period)
            });
        let cgroup_memory_bytes = read("sys/fs/cgroup/memory.max")
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| {
                read("sys/fs/cgroup/memory/memory.limit_in_bytes")
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    // v1 says "no limit" with a number near i64::MAX.
                    .filter(|b| *b < 1 << 60)
            });
        let memory_bytes = read("proc/meminfo").and_then(|s| parse_mem_total(&s));
        Self {
            board,
            kind,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cgroup_cpus,
            memory_bytes,
            cgroup_memory_bytes,
        }
    }

    /// CPUs this process may really use: the smaller of the OS count and the
    /// cgroup quota (rounded up), at least 1.
    pub fn usable_cpus(&self) -> usize {
        let quota = self
            .cgroup_cpus
            .map_or(usize::MAX, |c| c.ceil().max(1.0) as usize);
        self.cpus.min(quota).max(1)
    }

    /// Memory this process may use: the smaller of RAM and the cgroup limit.
    pub fn usable_memory_bytes(&self) -> Option<u64> {
        match (self.memory_bytes, self.cgroup_memory_bytes) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// cgroup v2 `cpu.max`: "max 100000" (no limit) or "200000 100000" (2 CPUs).
fn parse_cpu_max(s: &str) -> Option<f64> {
    let mut parts = s.split_whitespace();
    let quota = parts.next()?;
    let period: f64 = parts.next()?.parse().ok()?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    Some(quota.parse::<f64>().ok()? / period)
}

/// cgroup v1 `cpu.cfs_quota_us` (-1: no limit) over `cpu.cfs_period_us`.
fn parse_cfs(quota: &str, period: &str) -> Option<f64> {
    let quota: f64 = quota.trim().parse().ok()?;
    let period: f64 = period.trim().parse().ok()?;
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn parse_mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, body) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        dir
    }

    #[test]
    fn raspberry_pi_in_a_container() {
        let t = tree(&[
            ("proc/device-tree/model", "Raspberry Pi 4 Model B Rev 1.4\0"),
            ("sys/fs/cgroup/cpu.max", "150000 100000\n"),
            ("sys/fs/cgroup/memory.max", "536870912\n"),
            (
                "proc/meminfo",
                "MemTotal:        3884096 kB\nMemFree: 1 kB\n",
            ),
        ]);
        let p = HardwareProfile::detect_in(t.path());
        assert_eq!(p.kind, MachineKind::RaspberryPi);
        assert_eq!(p.cgroup_cpus, Some(1.5));
        assert_eq!(p.usable_cpus(), p.cpus.min(2));
        assert_eq!(p.usable_memory_bytes(), Some(536_870_912));
        assert_eq!(p.memory_bytes, Some(3_884_096 * 1024));
    }

    #[test]
    fn cgroup_v1_limits_and_its_no_limit() {
        let t = tree(&[
            ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "100000\n"),
            ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
            ("sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912\n"),
        ]);
        let p = HardwareProfile::detect_in(t.path());
        assert_eq!(p.cgroup_cpus, Some(1.0));
        assert_eq!(p.usable_cpus(), 1);
        assert_eq!(p.cgroup_memory_bytes, Some(536_870_912));
        let t = tree(&[
            ("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n"),
            ("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n"),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        let p = HardwareProfile::detect_in(t.path());
        assert_eq!((p.cgroup_cpus, p.cgroup_memory_bytes), (None, None));
    }

    #[test]
    fn jetson_and_unlimited_cgroup() {
        let t = tree(&[
            ("etc/nv_tegra_release", "# R35 (release)"),
            ("sys/fs/cgroup/cpu.max", "max 100000\n"),
            ("sys/fs/cgroup/memory.max", "max\n"),
        ]);
        let p = HardwareProfile::detect_in(t.path());
        assert_eq!(p.kind, MachineKind::Jetson);
        assert_eq!((p.cgroup_cpus, p.cgroup_memory_bytes), (None, None));
        assert_eq!(p.usable_cpus(), p.cpus);
    }
}
