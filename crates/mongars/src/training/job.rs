//! One training run of a dataset version, as the server's scheduler and
//! `mongars train run --dataset` carry it out: examples from the version's
//! items, the gated loop with a pause at any step (checkpoint, best adapter
//! and clock kept in the run's folder), progress written to the run's row
//! at every step, and at the end the adapter written and, when it passed
//! its gate, registered as a candidate.

use super::{Gated, Sets, Stop, example, gate, lora_options, run_options};
use anyhow::Context;
use mongars_config::Settings;
use mongars_core::ports::RunRepository;
use mongars_core::training::curation::CurationService;
use mongars_core::training::model::{RunStatus, Split, TrainingRun};
use mongars_core::training::registry::{AdapterRegistry, NewAdapter, sha256_file};
use mongars_llm::embedded::EmbeddedBackend;
use mongars_train::adapter::{AdapterInfo, write_gguf};
use mongars_train::corpus::general_set;
use mongars_train::loss::Example;
use mongars_train::model::load_gguf;
use mongars_train::trainer::{Objective, Trainer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Told of every change of a run, with the tokens/s after a step.
pub type Notify = Arc<dyn Fn(&TrainingRun, Option<f64>) + Send + Sync>;

/// What a run needs from the node.
#[derive(Clone)]
pub struct JobContext {
    pub settings: Arc<Settings>,
    pub runs: Arc<dyn RunRepository>,
    pub curation: Arc<CurationService>,
    pub registry: Arc<AdapterRegistry>,
    /// The embedded engine: its tokenizer and chat template write examples.
    pub engine: Arc<EmbeddedBackend>,
    /// Told of every change of a run (events, metrics).
    pub notify: Notify,
}

/// Where a run keeps its checkpoint, state and adapter.
pub fn run_dir(settings: &Settings, id: &str) -> PathBuf {
    settings.data_dir.join("training").join("runs").join(id)
}

/// CPU seconds this process has used (all threads), from /proc.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) in parentheses.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    let hz = 100.0;
    (ticks(11) + ticks(12)) / hz
}

/// Record that `run` failed (its latest saved state, or `run` itself when
/// none was saved) and tell `notify`.
pub async fn mark_failed(
    runs: &dyn RunRepository,
    run: TrainingRun,
    notify: Option<&Notify>,
) -> anyhow::Result<()> {
    let mut failed = runs.get(&run.id).await?.unwrap_or(run);
    failed.status = RunStatus::Failed;
    failed.error_code = Some("training.failed".into());
    failed.updated_at = chrono::Utc::now();
    failed.finished_at = Some(failed.updated_at);
    runs.save(&failed).await?;
    if let Some(notify) = notify {
        notify(&failed, None);
    }
    Ok(())
}

/// Carry out `run` (already claimed) until it finishes or `pause` answers
/// true after a step. Returns the run as saved.
pub async fn execute(
    ctx: JobContext,
    mut run: TrainingRun,
    pause: Arc<dyn Fn() -> bool + Send + Sync>,
) -> anyhow::Result<TrainingRun> {
    let (_, items) = ctx.curation.dataset(&run.dataset_id).await?;
    let engine = ctx.engine.clone();
    let settings = ctx.settings.clone();
    let to_examples = move |split: Split| -> anyhow::Result<Vec<Example>> {
        items
            .iter()
            .filter(|i| i.split == split)
            .map(|i| example(&engine, &i.prompt, &i.response))
            .collect()
    };
    let (own, held) = (to_examples(Split::Train)?, to_examples(Split::HeldOut)?);
    let users = own.len();
    let train = super::with_replay(&ctx.engine, own, ctx.settings.training.replay_share)?;
    let general: Vec<Example> = general_set()
        .iter()
        .map(|(q, a)| example(&ctx.engine, q, a))
        .collect::<anyhow::Result<_>>()?;
    let rt = tokio::runtime::Handle::current();
    run.status = RunStatus::Running;
    let job = ctx.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<TrainingRun> {
        let ctx = job;
        let t = &settings.training;
        let dir = run_dir(&settings, &run.id);
        std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
        let model_path = settings.llm.embedded.model_path.clone();
        let model = load_gguf(&model_path).context("llm.embedded.model_path")?;
        let lora = lora_options(t, model.config.layers);
        let options = run_options(t, run.steps_total.max(1) as usize, Objective::Supervised);
        let budget = Duration::from_secs_f64(t.max_minutes * 60.0);
        let checkpoint = dir.join("checkpoint.safetensors");
        let resumed = checkpoint.is_file() && dir.join("gated.json").is_file();
        let (mut trainer, mut gated) = if resumed {
            (
                Trainer::resume(&model, lora.clone(), options, &checkpoint)?,
                Gated::load(gate(t), t.eval_every, budget, &dir)?,
            )
        } else {
            if run.steps_done > 0 {
                tracing::warn!(run = %run.id, "no checkpoint here: the run starts over");
            }
            (
                Trainer::new(&model, lora.clone(), options)?,
                Gated::new(gate(t), t.eval_every, budget),
            )
        };
        let sets = Sets {
            train: &train,
            held_out: &held,
            general: &general,
        };
        let cpu_start = process_cpu_seconds();
        let cpu_before = run.cpu_seconds;
        let watts = t.watts_per_core;
        let account = |run: &mut TrainingRun| {
            run.cpu_seconds = cpu_before + (process_cpu_seconds() - cpu_start).max(0.0);
            run.energy_wh = run.cpu_seconds * watts / 3600.0;
            run.updated_at = chrono::Utc::now();
        };
        let stop = gated.train(&mut trainer, &model, &sets, |p, rate, tr| {
            run.steps_done = p.step as i64;
            run.tokens += p.tokens as i64;
            run.loss = Some(f64::from(p.loss));
            account(&mut run);
            if p.step % 10 == 0 {
                tr.save_checkpoint(&checkpoint)?;
            }
            rt.block_on(ctx.runs.save(&run))?;
            (ctx.notify)(&run, Some(rate));
            Ok(pause())
        })?;
        if stop == Stop::Paused {
            trainer.save_checkpoint(&checkpoint)?;
            gated.save(&dir)?;
            run.status = RunStatus::Paused;
            run.pauses += 1;
            account(&mut run);
            rt.block_on(ctx.runs.save(&run))?;
            (ctx.notify)(&run, None);
            return Ok(run);
        }
        let outcome = gated.finish(&mut trainer, &model, &sets)?;
        let adapter = dir.join("adapter.gguf");
        let info = AdapterInfo {
            architecture: "llama".into(),
            name: format!("mongars-run-{}", run.id),
        };
        write_gguf(&trainer.lora, &info, &adapter)?;
        let (b, a) = (outcome.before, outcome.after);
        run.figures = serde_json::json!({
            "held_out_perplexity_before": b.held_out,
            "held_out_perplexity_after": a.held_out,
            "general_perplexity_before": b.general,
            "general_perplexity_after": a.general,
            "kept_step": outcome.kept_step,
            "candidate": outcome.kept_step.is_some(),
            "samples_train": users,
            "replay_examples": train.len() - users,
            "samples_held_out": held.len(),
            "training_seconds": outcome.seconds,
            "tokens_per_second": outcome.tokens_per_second(),
            "rank": lora.rank,
            "layers": lora.layers,
            "targets": t.targets,
        });
        if outcome.kept_step.is_some() {
            let dataset = rt.block_on(ctx.curation.dataset(&run.dataset_id))?.0;
            let registered = rt.block_on(ctx.registry.register(NewAdapter {
                source: adapter.clone(),
                base_model_sha256: sha256_file(&model_path)?,
                dataset_hash: dataset.content_hash,
                run_id: Some(run.id.clone()),
                metrics: run.figures.clone(),
            }))?;
            run.adapter_id = Some(registered.id);
        }
        run.status = RunStatus::Succeeded;
        account(&mut run);
        run.finished_at = Some(run.updated_at);
        rt.block_on(ctx.runs.save(&run))?;
        (ctx.notify)(&run, None);
        // The adapter lives on in the registry; the checkpoints are done.
        for f in ["checkpoint.safetensors", "best.safetensors", "gated.json"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        Ok(run)
    })
    .await
    .context("training task")?
}
