//! `mongars doctor`: a readable check of the installation.

use crate::hardware::{HardwareProfile, MachineKind};
use crate::jwt_key;
use mongars_config::{DatabaseTarget, Settings};

pub async fn run(settings: Settings) -> anyhow::Result<i32> {
    let mut problems = 0;
    let mut line = |ok: bool, what: &str, detail: String| {
        if !ok {
            problems += 1;
        }
        println!("[{}] {what:<14} {detail}", if ok { " ok " } else { "FAIL" });
    };

    println!("monGARS {}", env!("CARGO_PKG_VERSION"));
    line(true, "settings", "valid".into());
    let data = &settings.data_dir;
    let writable = std::fs::create_dir_all(data).is_ok() && probe_write(data);
    line(
        writable,
        "data folder",
        format!(
            "{} {}",
            data.display(),
            if writable {
                "(writable)"
            } else {
                "is not writable"
            }
        ),
    );

    let target = match settings.database_target() {
        DatabaseTarget::Sqlite(p) => format!("SQLite at {}", p.display()),
        DatabaseTarget::Postgres(_) => "PostgreSQL (URL redacted)".to_string(),
    };
    match crate::wiring::database::open_database(&settings).await {
        Ok(db) => {
            let target = match db.encrypted().await {
                Ok(true) => format!("{target}, over TLS"),
                Ok(false) if db.engine() == "postgres" => format!("{target}, not encrypted"),
                _ => target,
            };
            line(db.ping().await.is_ok(), "database", target);
            match db.migration_status().await {
                Ok(s) if s.is_current() => line(
                    true,
                    "migrations",
                    format!("{} applied, none pending", s.applied.len()),
                ),
                Ok(s) => line(
                    settings.database.migrate_on_start,
                    "migrations",
                    format!(
                        "{} pending ({})",
                        s.pending.len(),
                        if settings.database.migrate_on_start {
                            "applied on serve"
                        } else {
                            "run `mongars migrate`"
                        }
                    ),
                ),
                Err(e) => line(false, "migrations", e.to_string()),
            }
            if db.migration_status().await.is_ok_and(|s| s.is_current()) {
                match mongars_store::integrity_problems(&db, true).await {
                    Ok(p) if p.is_empty() => line(true, "stored data", "consistent".into()),
                    Ok(p) => line(false, "stored data", p.join("; ")),
                    Err(e) => line(false, "stored data", e.to_string()),
                }
            }
            if let Some(turns) = turn_summary(&db).await {
                println!("[info] {:<14} {turns}", "turns");
            }
            let admins: i64 = admin_count(&db).await;
            line(
                admins != 0,
                "admin accounts",
                match admins {
                    -1 => "unknown (schema not created yet)".into(),
                    0 => "none: run `mongars user add NAME --admin`".into(),
                    n => n.to_string(),
                },
            );
            db.close().await;
        }
        Err(e) => line(false, "database", format!("{target}: {e}")),
    }
    let model = &settings.llm.embedded.model_path;
    match model_status(model) {
        Ok(size) => line(
            true,
            "model",
            format!("{} ({:.0} MB, GGUF)", model.display(), size as f64 / 1e6),
        ),
        Err(why) => line(
            false,
            "model",
            format!(
                "{}: {why}; run `make models` or set llm.embedded.model_path",
                model.display()
            ),
        ),
    }
    let key = jwt_key::describe(&settings);
    line(!key.starts_with("PROBLEM"), "signing key", key);

    let hw = HardwareProfile::detect();
    let kind = match hw.kind {
        MachineKind::RaspberryPi => "Raspberry Pi",
        MachineKind::Jetson => "NVIDIA Jetson",
        MachineKind::Generic => "generic",
    };
    let board = hw.board.clone().unwrap_or_else(|| "-".into());
    println!("[info] {:<14} {kind} ({board})", "machine");
    let quota = hw
        .cgroup_cpus
        .map_or("no cgroup quota".into(), |c| format!("cgroup quota {c:.2}"));
    println!(
        "[info] {:<14} {} usable ({} online, {quota})",
        "cpus",
        hw.usable_cpus(),
        hw.cpus
    );
    let mib = |b: u64| b / (1024 * 1024);
    let mem = match (hw.memory_bytes, hw.cgroup_memory_bytes) {
        (Some(m), Some(c)) => format!("{} MiB RAM, cgroup limit {} MiB", mib(m), mib(c)),
        (Some(m), None) => format!("{} MiB RAM, no cgroup limit", mib(m)),
        (None, Some(c)) => format!("cgroup limit {} MiB", mib(c)),
        (None, None) => "unknown".into(),
    };
    println!("[info] {:<14} {mem}", "memory");
    let mut tuned = settings.clone();
    for c in crate::hardware::tuning::tune(&mut tuned, &hw) {
        println!(
            "[info] {:<14} {} = {} ({})",
            "tuning", c.setting, c.value, c.reason
        );
    }
    println!(
        "[info] {:<14} {}",
        "connections",
        crate::limits::describe(&tuned)
    );
    for (what, url) in remote_urls(&settings) {
        let how = if mongars_net::uses_tls(url) {
            "TLS"
        } else {
            "plain HTTP, not encrypted"
        };
        let shown = mongars_config::redact_url_credentials(url);
        println!("[info] {:<14} {what} {shown}: {how}", "remote");
    }
    match crate::wiring::net::outbound_tls(&settings) {
        Ok(tls) if tls.extra_cas() > 0 => println!(
            "[info] {:<14} public roots and {} CA certificate(s) from {}",
            "tls",
            tls.extra_cas(),
            settings.tls.ca_file.display()
        ),
        Ok(_) => println!("[info] {:<14} public roots (tls.ca_file not set)", "tls"),
        Err(e) => line(false, "tls", format!("{e:#}")),
    }
    if settings.peers.enabled {
        match crate::wiring::peers::identity(&settings) {
            Ok(id) => println!(
                "[info] {:<14} node id {} (port {}, mutual TLS{})",
                "peers",
                id.fingerprint,
                settings.peers.port,
                if settings.peers.ca_file.as_os_str().is_empty() {
                    ", registered keys only"
                } else {
                    ", registered keys and the CA's certificates"
                }
            ),
            Err(e) => line(false, "peers", format!("{e:#}")),
        }
    }
    let hashes = match settings.auth.max_concurrent_hashes {
        0 => hw.usable_cpus(),
        n => n as usize,
    };
    println!(
        "[info] {:<14} {hashes} password hashes at once, argon2id m={} KiB t={} p={}",
        "auth",
        settings.auth.argon2_memory_kib,
        settings.auth.argon2_iterations,
        settings.auth.argon2_parallelism
    );

    if problems > 0 {
        println!("{problems} problem(s) found");
        Ok(1)
    } else {
        println!("all checks passed");
        Ok(0)
    }
}

/// Every remote URL the settings will use: the active profile's backends,
/// a remote embedder, research providers when on, the OTLP collector.
fn remote_urls(settings: &Settings) -> Vec<(String, &str)> {
    let mut urls = Vec::new();
    if let Some(profile) = settings.llm.active_profile() {
        let mut names: Vec<&String> = profile.general.backends.iter().collect();
        names.extend(&profile.coding.backends);
        names.sort();
        names.dedup();
        for name in names {
            if let Some(b) = settings.llm.backends.get(name) {
                for u in b.url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                    urls.push((format!("backend {name}"), u));
                }
            }
        }
    }
    let e = &settings.embeddings;
    if e.kind != mongars_config::EmbedderKind::Embedded && !e.url.is_empty() {
        urls.push(("embeddings".into(), e.url.as_str()));
    }
    let r = &settings.research;
    if r.enabled {
        for (what, u) in [("searxng", &r.searxng_url), ("documents", &r.documents_url)] {
            if !u.is_empty() {
                urls.push((format!("research {what}"), u.as_str()));
            }
        }
    }
    if !settings.telemetry.otlp_endpoint.is_empty() {
        urls.push(("otlp".into(), settings.telemetry.otlp_endpoint.as_str()));
    }
    urls
}

/// Turns by outcome: how many ended each way, and how many are in flight
/// (or were left by a process that died and no server has started since).
async fn turn_summary(db: &mongars_store::Database) -> Option<String> {
    let rows = mongars_store::SqlTurnRepository::new(db.clone())
        .count_by_status()
        .await
        .ok()?;
    let count = |status: &str, code: Option<&str>| -> i64 {
        rows.iter()
            .filter(|(s, c, _)| s == status && code.is_none_or(|code| c.as_deref() == Some(code)))
            .map(|(_, _, n)| n)
            .sum()
    };
    Some(format!(
        "{} complete, {} failed ({} interrupted), {} pending",
        count("complete", None),
        count("failed", None),
        count(
            "failed",
            Some(mongars_core::conversation::recovery::INTERRUPTED)
        ),
        count("pending", None)
    ))
}

/// Size of a readable GGUF file, or why it is not one (without loading it).
fn model_status(path: &std::path::Path) -> Result<u64, String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(|e| e.to_string())?;
    if &magic != b"GGUF" {
        return Err("not a GGUF file".into());
    }
    file.metadata().map(|m| m.len()).map_err(|e| e.to_string())
}

fn probe_write(dir: &std::path::Path) -> bool {
    let probe = dir.join(".doctor-probe");
    let ok = std::fs::write(&probe, b"ok").is_ok();
    let _ = std::fs::remove_file(probe);
    ok
}

/// Admins in the database, or -1 when the schema does not exist yet.
async fn admin_count(db: &mongars_store::Database) -> i64 {
    if !db.migration_status().await.is_ok_and(|s| s.is_current()) {
        return -1;
    }
    let users = mongars_store::SqlUserRepository::new(db.clone());
    mongars_core::ports::UserRepository::count_admins(&users)
        .await
        .map_or(-1, |n| n as i64)
}
