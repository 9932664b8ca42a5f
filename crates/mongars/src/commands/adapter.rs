//! `mongars adapter list|approve|reject|activate|rollback`: the adapter
//! registry from the command line. This process runs no engine: servers
//! sharing the database follow an activation or rollback within seconds.

use crate::cli::AdapterCommand;
use crate::wiring::training::training_state;
use mongars_config::Settings;

pub async fn run(cmd: AdapterCommand, settings: Settings) -> anyhow::Result<i32> {
    let db = crate::wiring::database::open_database(&settings).await?;
    let clock = crate::wiring::system_clock();
    let registry = training_state(&settings, &db, None, &clock).adapters;
    // Changes made here are the operator's, not an account's.
    const OPERATOR: i64 = 0;
    match cmd {
        AdapterCommand::List => {
            let all = registry.list().await?;
            if all.is_empty() {
                println!("no adapters yet: training runs register the ones that pass their gate");
            }
            for a in all {
                let m = &a.metrics;
                println!(
                    "v{:<4} {}  {:<9}  held-out {} -> {}  general {} -> {}  {}",
                    a.version,
                    a.id,
                    a.status.as_str(),
                    num(&m["held_out_perplexity_before"]),
                    num(&m["held_out_perplexity_after"]),
                    num(&m["general_perplexity_before"]),
                    num(&m["general_perplexity_after"]),
                    a.created_at.format("%Y-%m-%d %H:%M")
                );
            }
        }
        AdapterCommand::Approve { id } => {
            let a = registry.approve(&id, OPERATOR).await?;
            println!("adapter {} (v{}) is {}", a.id, a.version, a.status.as_str());
        }
        AdapterCommand::Reject { id } => {
            let a = registry.reject(&id).await?;
            println!("adapter {} (v{}) is {}", a.id, a.version, a.status.as_str());
        }
        AdapterCommand::Activate { id } => {
            let s = registry.activate(&id, OPERATOR).await?;
            let a = s.active.expect("an activated adapter");
            println!(
                "adapter {} (v{}) is active; servers switch to it within seconds",
                a.id, a.version
            );
        }
        AdapterCommand::Rollback => {
            let s = registry.rollback().await?;
            match s.active {
                Some(a) => println!("adapter {} (v{}) is active again", a.id, a.version),
                None => println!("no adapter is active: the bare model serves"),
            }
        }
    }
    Ok(0)
}

fn num(v: &serde_json::Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.2}"))
}
