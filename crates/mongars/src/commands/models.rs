//! `mongars models list|pull|check`: the active profile's models, from the
//! command line, through the same router the server builds.

use crate::cli::ModelsCommand;
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::domain::ModelRole;
use mongars_core::ports::{ModelFleet, PullProgress, RoleProvision};
use mongars_metrics::Metrics;
use std::io::Write;
use std::sync::{Arc, Mutex};

pub async fn run(cmd: ModelsCommand, settings: Settings) -> anyhow::Result<i32> {
    let router = crate::wiring::llm::router_from_settings(
        &settings,
        None,
        &Metrics::new(),
        &crate::wiring::system_clock(),
    )
    .await?;
    match cmd {
        ModelsCommand::List => {
            let view = router.models();
            println!(
                "profile: {} (available: {})",
                view.active_profile,
                view.profiles.join(", ")
            );
            let reports = router.backends().await;
            for role in &view.roles {
                println!("{}:", role.role);
                for (i, b) in role.backends.iter().enumerate() {
                    let health = reports
                        .iter()
                        .find(|r| r.name == b.backend)
                        .map(|r| {
                            if r.healthy {
                                "up".to_string()
                            } else {
                                format!("down: {}", r.detail)
                            }
                        })
                        .unwrap_or_default();
                    println!(
                        "  {}. {} ({}) model {} [{health}]",
                        i + 1,
                        b.backend,
                        b.kind,
                        b.model
                    );
                }
            }
            Ok(0)
        }
        ModelsCommand::Pull { role, force } => {
            let roles = match role {
                Some(r) => vec![
                    ModelRole::parse(&r)
                        .with_context(|| format!("--role {r:?}: use general or coding"))?,
                ],
                None => Vec::new(),
            };
            let bar = Arc::new(Mutex::new(Bar::default()));
            let sink = {
                let bar = bar.clone();
                Arc::new(move |p: PullProgress| {
                    if let Ok(mut b) = bar.lock() {
                        b.show(&p);
                    }
                })
            };
            let results = router.provision(&roles, force, sink).await;
            if let Ok(mut b) = bar.lock() {
                b.finish();
            }
            Ok(report(&results))
        }
        ModelsCommand::Check => {
            let mut ok = true;
            for r in router.backends().await {
                let mark = if r.healthy { "ok" } else { "MISSING" };
                println!("{mark:8} {} ({}) {}: {}", r.name, r.kind, r.model, r.detail);
                ok &= r.healthy;
            }
            Ok(if ok { 0 } else { 1 })
        }
    }
}

fn report(results: &[RoleProvision]) -> i32 {
    let mut failed = false;
    for role in results {
        for r in &role.results {
            match &r.error {
                None => println!("{}: {} {} {}", role.role, r.backend, r.model, r.status),
                Some(e) => {
                    failed = true;
                    eprintln!("{}: {} {} FAILED: {e}", role.role, r.backend, r.model);
                }
            }
        }
    }
    i32::from(failed)
}

/// A one-line progress bar on stderr, redrawn in place.
#[derive(Default)]
struct Bar {
    drawn: bool,
    last: String,
}

impl Bar {
    fn show(&mut self, p: &PullProgress) {
        let line = match (p.completed, p.total) {
            (Some(done), Some(total)) if total > 0 => {
                let pct = (done as f64 / total as f64 * 100.0).min(100.0);
                let filled = (pct / 5.0) as usize;
                format!(
                    "{:<24} [{}{}] {:5.1}% {}/{}",
                    p.status.chars().take(24).collect::<String>(),
                    "#".repeat(filled),
                    " ".repeat(20 - filled.min(20)),
                    pct,
                    human(done),
                    human(total)
                )
            }
            _ => p.status.clone(),
        };
        if line == self.last {
            return;
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
        self.last = line;
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", UNITS[i])
}
