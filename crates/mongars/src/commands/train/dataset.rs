//! `mongars train dataset build|list|export` and `mongars train run
//! --dataset ID`: the database's dataset versions, and a run of one as the
//! server's scheduler would carry it out (progress on the terminal, a
//! passing adapter registered as a candidate).

use crate::cli::DatasetCommand;
use crate::training::job::{JobContext, execute, mark_failed};
use crate::wiring::training::training_state;
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::training::model::RunObjective;
use std::io::Write;
use std::sync::Arc;

pub async fn command(cmd: DatasetCommand, settings: Settings) -> anyhow::Result<i32> {
    let db = crate::wiring::database::open_database(&settings).await?;
    let clock = crate::wiring::system_clock();
    let t = training_state(&settings, &db, None, &clock);
    match cmd {
        DatasetCommand::Build => {
            let d = t.curation.build_dataset(None).await?;
            println!(
                "dataset {} (version {}): {} samples, {} to train on, {} held out, sha256 {}",
                d.id, d.version, d.samples, d.train, d.held_out, d.content_hash
            );
        }
        DatasetCommand::List => {
            let all = t.curation.datasets().await?;
            if all.is_empty() {
                println!("no dataset versions yet: `mongars train dataset build` makes one");
            }
            for d in all {
                println!(
                    "v{:<4} {}  {} samples ({} train / {} held out)  {}  sha256 {}",
                    d.version,
                    d.id,
                    d.samples,
                    d.train,
                    d.held_out,
                    d.created_at.format("%Y-%m-%d %H:%M"),
                    &d.content_hash[..16]
                );
            }
        }
        DatasetCommand::Export { id, out } => {
            let (d, items) = t.curation.dataset(&id).await?;
            let mut text = String::new();
            for it in &items {
                let line = serde_json::json!({
                    "sample_id": it.sample_id,
                    "split": it.split.as_str(),
                    "prompt": it.prompt,
                    "response": it.response,
                });
                text.push_str(&line.to_string());
                text.push('\n');
            }
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| path.display().to_string())?;
                    eprintln!(
                        "{} items of version {} written to {}",
                        items.len(),
                        d.version,
                        path.display()
                    );
                }
                None => std::io::stdout().write_all(text.as_bytes())?,
            }
        }
    }
    Ok(0)
}

/// Train on a dataset version in this process, now (no idle wait).
pub async fn run(
    dataset: &str,
    minutes: Option<f64>,
    steps: Option<usize>,
    mut settings: Settings,
) -> anyhow::Result<i32> {
    if let Some(m) = minutes {
        settings.training.max_minutes = m;
    }
    let db = crate::wiring::database::open_database(&settings).await?;
    let clock = crate::wiring::system_clock();
    let t = training_state(&settings, &db, None, &clock);
    let dataset = (dataset != "latest").then_some(dataset);
    let run = t
        .runs
        .create(dataset, RunObjective::Supervised, steps.map(|s| s as i64))
        .await?;
    let now = chrono::Utc::now();
    anyhow::ensure!(
        t.runs.repository().claim(&run.id, now, now).await?,
        "run {} was taken by another process",
        run.id
    );
    println!(
        "run {} of dataset {}: {} steps",
        run.id, run.dataset_id, run.steps_total
    );
    let engine = crate::training::load_engine(&settings).await?;
    let started = std::time::Instant::now();
    let notify = Arc::new(
        move |r: &mongars_core::training::model::TrainingRun, rate: Option<f64>| {
            if let (Some(rate), Some(loss)) = (rate, r.loss) {
                let per_step = started.elapsed().as_secs_f64() / r.steps_done.max(1) as f64;
                let left = (r.steps_total - r.steps_done).max(0) as f64;
                println!(
                    "step {:>4}/{}  loss {:.4}  {:.0} tokens/s  ETA {:.0} s",
                    r.steps_done,
                    r.steps_total,
                    loss,
                    rate,
                    per_step * left
                );
            }
        },
    );
    let ctx = JobContext {
        settings: Arc::new(settings),
        runs: t.runs.repository().clone(),
        curation: t.curation.clone(),
        registry: t.adapters.clone(),
        engine: Arc::new(engine),
        notify,
    };
    let done = match execute(ctx, t.runs.get(&run.id).await?, Arc::new(|| false)).await {
        Ok(done) => done,
        Err(e) => {
            mark_failed(t.runs.repository().as_ref(), run, None).await?;
            return Err(e);
        }
    };
    let f = &done.figures;
    println!(
        "held-out perplexity {:.2} -> {:.2}, general {:.2} -> {:.2}; {:.1} CPU s, {:.4} Wh",
        f["held_out_perplexity_before"].as_f64().unwrap_or(f64::NAN),
        f["held_out_perplexity_after"].as_f64().unwrap_or(f64::NAN),
        f["general_perplexity_before"].as_f64().unwrap_or(f64::NAN),
        f["general_perplexity_after"].as_f64().unwrap_or(f64::NAN),
        done.cpu_seconds,
        done.energy_wh
    );
    match &done.adapter_id {
        Some(id) => println!(
            "candidate adapter {id}: `mongars adapter approve {id}`, then `mongars adapter activate {id}`"
        ),
        None => println!("rejected: the adapter did not pass the gate (see the figures above)"),
    }
    Ok(0)
}
