//! Who this process is, as stored on the turns it runs, and whether the
//! process behind such an identity is still running.
//!
//! An identity is `<machine>/<pid>/<start>`: the machine is the host name and
//! the kernel's boot id, the start is the process's start time in clock ticks
//! since boot (from `/proc/<pid>/stat`), so a reused pid is not mistaken for
//! the process that had it before. On the same machine liveness is certain;
//! elsewhere, or where `/proc` is missing, it is unknown and turns are only
//! failed once they are older than any reply can take.

use mongars_config::Settings;
use mongars_core::conversation::recovery::Liveness;
use std::sync::OnceLock;
use std::time::Duration;

/// This process's identity, computed once.
pub fn current() -> &'static str {
    static ME: OnceLock<String> = OnceLock::new();
    ME.get_or_init(|| {
        let pid = std::process::id();
        match (machine(), start_ticks(pid)) {
            (Some(m), Some(start)) => format!("{m}/{pid}/{start}"),
            // Not checkable: a random identity that no one will take for theirs.
            _ => format!("unknown-{}/{pid}/0", uuid::Uuid::new_v4().simple()),
        }
    })
}

/// Whether the process named by `owner` is still running.
pub fn liveness(owner: &str) -> Liveness {
    let mut parts = owner.rsplitn(3, '/');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return Liveness::Unknown;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return Liveness::Unknown;
    };
    if machine().as_deref() != Some(host) {
        return Liveness::Unknown;
    }
    match start_ticks(pid) {
        Some(now) if now == start => Liveness::Alive,
        _ => Liveness::Dead,
    }
}

/// The longest a turn can run: its reply's whole time limit, or the request
/// timeout if that is longer, plus a margin for a loaded machine.
pub fn longest_turn(settings: &Settings) -> Duration {
    let total = Duration::from_millis(settings.llm.resilience.total_timeout_ms);
    let request = Duration::from_secs(settings.server.request_timeout_secs);
    total.max(request) + Duration::from_secs(60)
}

fn machine() -> Option<String> {
    static MACHINE: OnceLock<Option<String>> = OnceLock::new();
    MACHINE
        .get_or_init(|| {
            let host = read_trimmed("/proc/sys/kernel/hostname")?;
            let boot = read_trimmed("/proc/sys/kernel/random/boot_id")?;
            let host: String = host
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c))
                .collect();
            Some(format!("{host}@{}", boot.replace('-', "")))
        })
        .clone()
}

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks after boot.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')')? + 2..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

fn read_trimmed(path: &str) -> Option<String> {
    let s = std::fs::read_to_string(path).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_not() {
        let me = current();
        if me.starts_with("unknown-") {
            return; // no /proc here: nothing can be checked
        }
        assert_eq!(liveness(me), Liveness::Alive);
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let mut child = child;
        let start = start_ticks(pid);
        child.wait().unwrap();
        let host = me.rsplitn(3, '/').nth(2).unwrap();
        if let Some(start) = start {
            assert_eq!(liveness(&format!("{host}/{pid}/{start}")), Liveness::Dead);
        }
        // Same pid, another start time: a different process.
        let pid = std::process::id();
        assert_eq!(liveness(&format!("{host}/{pid}/1")), Liveness::Dead);
        assert_eq!(liveness("elsewhere@x/1/1"), Liveness::Unknown);
        assert_eq!(liveness("garbage"), Liveness::Unknown);
    }
}
