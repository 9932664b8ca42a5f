//! Settings that follow the machine. Each of these is `0` (automatic) by
//! default and chosen here from the hardware profile (Raspberry Pi, Jetson,
//! cgroup CPU quota and memory limit); a value set in settings is kept.
//! `mongars doctor` prints every choice with its reason.

use super::{HardwareProfile, MachineKind};
use mongars_config::Settings;
use std::borrow::Cow;

const MIB: u64 = 1024 * 1024;

/// One setting as it will be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub setting: &'static str,
    pub value: u64,
    pub reason: String,
}

/// The async runtime's worker threads: `server.worker_threads`, or the CPUs
/// this process may use (cgroup quota included; the runtime itself would
/// count every online CPU).
pub fn worker_threads(settings: &Settings, hw: &HardwareProfile) -> usize {
    match settings.server.worker_threads {
        0 => hw.usable_cpus(),
        n => n as usize,
    }
}

/// `settings` with every automatic value chosen for this machine. Builders
/// that read one of these settings start from here, so that a `0` never
/// reaches a pool or an engine; settings already tuned (as `app::build`
/// leaves them) are used as they are, without reading the hardware again.
pub fn tuned(settings: &Settings) -> Cow<'_, Settings> {
    let automatic = [
        settings.server.worker_threads,
        settings.llm.embedded.parallel,
        settings.llm.embedded.threads,
        settings.llm.embedded.context_tokens,
        settings.embeddings.batch_size,
        settings.database.max_connections,
    ];
    if !automatic.contains(&0) {
        return Cow::Borrowed(settings);
    }
    let mut s = settings.clone();
    tune(&mut s, &HardwareProfile::detect());
    Cow::Owned(s)
}

/// Fill in every automatic setting of `settings`; the choices, explicit ones
/// included, in a fixed order.
pub fn tune(settings: &mut Settings, hw: &HardwareProfile) -> Vec<Choice> {
    let cpus = hw.usable_cpus();
    let memory = hw.usable_memory_bytes();
    let cpu_words = cpu_words(hw);
    let mut choices = Vec::new();
    let mut pick = |setting: &'static str, current: &mut u32, auto: (u32, String)| {
        let reason = if *current == 0 {
            *current = auto.0;
            auto.1
        } else {
            "set in settings".to_string()
        };
        choices.push(Choice {
            setting,
            value: u64::from(*current),
            reason,
        });
    };

    pick(
        "server.worker_threads",
        &mut settings.server.worker_threads,
        (cpus as u32, format!("one per usable CPU ({cpu_words})")),
    );

    // Replies generated together: they share one batch per decode step and
    // one set of compute threads, so four cost little more per step than one;
    // each keeps its own part of the KV cache, which is what memory limits.
    let (parallel, why) = match memory {
        Some(m) if m < 1024 * MIB => (
            2,
            format!(
                "{} MiB of memory: each reply keeps its own KV cache",
                m / MIB
            ),
        ),
        _ => (
            4,
            "replies share each decode step; four at once cost little more than one".to_string(),
        ),
    };
    pick(
        "llm.embedded.parallel",
        &mut settings.llm.embedded.parallel,
        (parallel, why),
    );
    // One context decodes for every reply: its threads are the engine's in
    // all, whatever `parallel` says.
    pick(
        "llm.embedded.threads",
        &mut settings.llm.embedded.threads,
        (
            cpus as u32,
            format!("one per usable CPU, shared by every reply ({cpu_words})"),
        ),
    );

    let (mut context, mut why) = match memory {
        Some(m) if m < 1024 * MIB => (
            1024,
            format!(
                "{} MiB of memory: a smaller context keeps the KV cache small",
                m / MIB
            ),
        ),
        Some(m) => (2048, format!("{} MiB of memory", m / MIB)),
        None => (2048, "memory unknown".to_string()),
    };
    // Room for the longest reply a role may ask of the embedded engine.
    let need = embedded_max_tokens(settings).map_or(0, |t| (t + 256).next_multiple_of(256));
    if need > context {
        context = need;
        why = format!(
            "{why}; raised to fit max_tokens of {} and a prompt",
            need - 256
        );
    }
    pick(
        "llm.embedded.context_tokens",
        &mut settings.llm.embedded.context_tokens,
        (context, why),
    );

    let (batch, why) = match (memory, hw.kind) {
        (Some(m), _) if m < 1024 * MIB => (8, format!("{} MiB of memory", m / MIB)),
        (_, MachineKind::RaspberryPi) => (8, "a Raspberry Pi's small caches".to_string()),
        (Some(m), _) if m < 4096 * MIB => (16, format!("{} MiB of memory", m / MIB)),
        (Some(m), _) => (32, format!("{} MiB of memory", m / MIB)),
        (None, _) => (32, "memory unknown".to_string()),
    };
    pick(
        "embeddings.batch_size",
        &mut settings.embeddings.batch_size,
        (batch, why),
    );

    let pool = (2 * cpus + 2).clamp(4, 32) as u32;
    pick(
        "database.max_connections",
        &mut settings.database.max_connections,
        (
            pool,
            format!("two per usable CPU and two spare ({cpu_words})"),
        ),
    );
    choices
}

/// The largest `max_tokens` of a role of the active profile that may run on
/// the embedded engine.
fn embedded_max_tokens(settings: &Settings) -> Option<u32> {
    settings
        .llm
        .active_profile()
        .into_iter()
        .flat_map(|p| [&p.general, &p.coding])
        .filter(|r| {
            r.backends
                .iter()
                .any(|b| b == mongars_config::EMBEDDED_BACKEND)
        })
        .map(|r| r.max_tokens)
        .max()
}

fn cpu_words(hw: &HardwareProfile) -> String {
    let cpus = hw.usable_cpus();
    let board = match hw.kind {
        MachineKind::RaspberryPi => " on a Raspberry Pi",
        MachineKind::Jetson => " on a Jetson",
        MachineKind::Generic => "",
    };
    match hw.cgroup_cpus {
        Some(q) => format!(
            "{cpus} usable CPU(s){board}: cgroup quota {q:.2} of {} online",
            hw.cpus
        ),
        None => format!("{cpus} usable CPU(s){board}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(
        cpus: usize,
        quota: Option<f64>,
        memory_mib: Option<u64>,
        kind: MachineKind,
    ) -> HardwareProfile {
        HardwareProfile {
            board: None,
            kind,
            cpus,
            cgroup_cpus: quota,
            memory_bytes: Some(16 * 1024 * MIB),
            cgroup_memory_bytes: memory_mib.map(|m| m * MIB),
        }
    }

    fn auto() -> Settings {
        let mut s = mongars_config::defaults().unwrap();
        s.server.worker_threads = 0;
        s.llm.embedded.parallel = 0;
        s.llm.embedded.threads = 0;
        s.llm.embedded.context_tokens = 0;
        s.embeddings.batch_size = 0;
        s.database.max_connections = 0;
        s
    }

    fn values(choices: &[Choice]) -> Vec<(&'static str, u64)> {
        choices.iter().map(|c| (c.setting, c.value)).collect()
    }

    #[test]
    fn a_container_of_one_cpu_and_512_mib_gets_small_choices() {
        let mut s = auto();
        let choices = tune(
            &mut s,
            &profile(8, Some(1.0), Some(512), MachineKind::Generic),
        );
        assert_eq!(
            values(&choices),
            [
                ("server.worker_threads", 1),
                ("llm.embedded.parallel", 2),
                ("llm.embedded.threads", 1),
                ("llm.embedded.context_tokens", 1024),
                ("embeddings.batch_size", 8),
                ("database.max_connections", 4),
            ]
        );
        assert_eq!(s.llm.embedded.context_tokens, 1024);
        assert!(
            choices[0].reason.contains("cgroup quota 1.00 of 8 online"),
            "{choices:?}"
        );
    }

    #[test]
    fn a_big_machine_batches_replies_on_every_core() {
        let mut s = auto();
        let choices = tune(&mut s, &profile(16, None, None, MachineKind::Generic));
        assert_eq!(s.llm.embedded.parallel, 4);
        assert_eq!(s.llm.embedded.threads, 16, "one context, every core");
        assert_eq!(s.server.worker_threads, 16);
        assert_eq!(s.database.max_connections, 32);
        assert_eq!(s.embeddings.batch_size, 32);
        assert_eq!(choices.len(), 6);
    }

    #[test]
    fn explicit_settings_are_kept_and_said_so() {
        let mut s = auto();
        s.llm.embedded.parallel = 2;
        s.database.max_connections = 7;
        let choices = tune(
            &mut s,
            &profile(4, None, Some(4096), MachineKind::RaspberryPi),
        );
        assert_eq!(s.llm.embedded.parallel, 2);
        assert_eq!(s.llm.embedded.threads, 4, "the engine's threads in all");
        assert_eq!(s.database.max_connections, 7);
        assert_eq!(s.embeddings.batch_size, 8, "Raspberry Pi");
        let kept: Vec<_> = choices
            .iter()
            .filter(|c| c.reason == "set in settings")
            .map(|c| c.setting)
            .collect();
        assert_eq!(kept, ["llm.embedded.parallel", "database.max_connections"]);
    }
}
