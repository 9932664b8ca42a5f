//! `mongars train run --data FILE`: a LoRA run on the embedded model from
//! a file of samples, with the settings under `[training]`.

use crate::training::{Sets, example, gate, load_models, lora_options, run_options, train_gated};
use anyhow::{Context, bail};
use mongars_config::Settings;
use mongars_core::training::registry::sha256_file;
use mongars_train::adapter::{AdapterInfo, write_gguf};
use mongars_train::corpus::general_set;
use mongars_train::loss::Example;
use mongars_train::trainer::{Objective, Trainer};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest prompt or response of a sample, in characters.
const MAX_CHARS: usize = 8000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    prompt: String,
    response: String,
}

/// The samples of a JSONL file, each checked; errors name the line.
fn read_samples(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let s: Sample = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {}: expected {{\"prompt\", \"response\"}}",
                path.display(),
                i + 1
            )
        })?;
        for (name, v) in [("prompt", &s.prompt), ("response", &s.response)] {
            if v.trim().is_empty() || v.chars().count() > MAX_CHARS {
                bail!(
                    "{} line {}: {name} must have 1 to {MAX_CHARS} characters",
                    path.display(),
                    i + 1
                );
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// `samples` with personal data replaced by placeholders; how many had any.
fn redacted(samples: Vec<Sample>) -> (Vec<Sample>, usize) {
    use mongars_core::training::pii::redact;
    let mut changed = 0;
    let out = samples
        .into_iter()
        .map(|s| {
            let (p, r) = (redact(&s.prompt, &[]), redact(&s.response, &[]));
            changed += usize::from(!p.is_clean() || !r.is_clean());
            Sample {
                prompt: p.text,
                response: r.text,
            }
        })
        .collect();
    (out, changed)
}

/// Whether a sample is held out: a seeded hash of its text, so that the
/// split does not move when samples are added.
fn held_out(sample: &Sample, seed: u64, share: f64) -> bool {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(sample.prompt.as_bytes());
    h.update([0]);
    h.update(sample.response.as_bytes());
    let d = h.finalize();
    let v = u64::from_le_bytes(d[..8].try_into().unwrap_or([0; 8]));
    (v as f64 / u64::MAX as f64) < share
}

/// What `adapter.json` records of a run.
#[derive(Debug, Serialize)]
struct Record {
    created_at: String,
    status: &'static str,
    base_model: String,
    base_model_sha256: String,
    dataset_sha256: String,
    samples_train: usize,
    /// Exchanges of the shipped replay set trained on with them.
    replay_examples: usize,
    /// Samples whose personal data was replaced.
    samples_redacted: usize,
    samples_held_out: usize,
    steps: usize,
    /// The step whose adapter was kept (none passed the gate: the last).
    kept_step: Option<usize>,
    training_seconds: f64,
    tokens_per_second: f64,
    held_out_perplexity_before: f64,
    held_out_perplexity_after: f64,
    general_perplexity_before: f64,
    general_perplexity_after: f64,
    /// `supervised`, or `mntp` (perplexities are then masked ones).
    objective: &'static str,
    rank: usize,
    alpha: f32,
    targets: Vec<String>,
    layers: Vec<usize>,
}

/// What `mongars train run --data` was asked for.
pub struct FileRun {
    pub data: PathBuf,
    pub out: Option<PathBuf>,
    pub minutes: Option<f64>,
    pub steps: Option<usize>,
    pub resume: bool,
    /// Masked next-token prediction instead of supervised replies.
    pub mntp: bool,
}

/// The token MNTP masks with: the generator has no mask token of its own;
/// like LLM2Vec for such models, an underscore.
const MASK: &str = "_";
/// Share of tokens masked by MNTP.
const MASK_RATIO: f32 = 0.2;

pub async fn run(cmd: FileRun, settings: Settings) -> anyhow::Result<i32> {
    let FileRun {
        data,
        out,
        minutes,
        steps,
        resume,
        mntp,
    } = cmd;
    let t = settings.training.clone();
    let (samples, with_pii) = redacted(read_samples(&data)?);
    if with_pii > 0 {
        println!("{with_pii} samples had personal data, replaced by placeholders");
    }
    let (held, train): (Vec<&Sample>, Vec<&Sample>) = samples
        .iter()
        .partition(|s| held_out(s, t.seed, t.held_out));
    if train.is_empty() || held.is_empty() {
        bail!(
            "{}: {} samples leave {} to train on and {} to hold out; both need at least one",
            data.display(),
            samples.len(),
            train.len(),
            held.len()
        );
    }
    let out = out.unwrap_or_else(|| {
        settings.data_dir.join("training").join(format!(
            "run-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S")
        ))
    });
    std::fs::create_dir_all(&out).with_context(|| format!("{}", out.display()))?;

    let model_path = settings.llm.embedded.model_path.clone();
    let (engine, model) = load_models(&settings).await?;
    let to_examples = |set: &[&Sample]| -> anyhow::Result<Vec<Example>> {
        set.iter()
            .map(|s| example(&engine, &s.prompt, &s.response))
            .collect()
    };
    let (train_set, held_set) = (to_examples(&train)?, to_examples(&held)?);
    let own = train_set.len();
    let train_set = crate::training::with_replay(&engine, train_set, t.replay_share)?;
    let general: Vec<Example> = general_set()
        .iter()
        .map(|(q, a)| example(&engine, q, a))
        .collect::<anyhow::Result<_>>()?;

    let lora = lora_options(&t, model.config.layers);
    let objective = if mntp {
        Objective::Mntp {
            mask_token: engine
                .single_token(MASK)
                .context("the model has no single token for the MNTP mask")?,
            ratio: MASK_RATIO,
        }
    } else {
        Objective::Supervised
    };
    let options = run_options(&t, steps.unwrap_or(t.steps), objective);
    let checkpoint = out.join("checkpoint.safetensors");
    let mut run = if resume {
        Trainer::resume(&model, lora.clone(), options, &checkpoint)
            .with_context(|| format!("resuming from {}", checkpoint.display()))?
    } else {
        Trainer::new(&model, lora.clone(), options)?
    };
    println!(
        "{} samples: {} to train on, {} held out; LoRA rank {} on {} of the top {} blocks ({} parameters)",
        samples.len(),
        train_set.len(),
        held_set.len(),
        lora.rank,
        t.targets.join(", "),
        t.layers,
        run.lora.parameters()
    );
    let budget = Duration::from_secs_f64(minutes.unwrap_or(t.max_minutes).max(0.0) * 60.0);
    let gate = gate(&t);
    let sets = Sets {
        train: &train_set,
        held_out: &held_set,
        general: &general,
    };
    let started = Instant::now();
    let outcome = train_gated(
        &mut run,
        &model,
        &sets,
        gate,
        t.eval_every,
        budget,
        |p, rate, run| {
            let per_step = started.elapsed().as_secs_f64() / p.step.max(1) as f64;
            println!(
                "step {:>4}/{}  loss {:.4}  {:.0} tokens/s  ETA {:.0} s",
                p.step,
                p.steps,
                p.loss,
                rate,
                per_step * (p.steps - p.step) as f64
            );
            if p.step % 10 == 0 || run.finished() {
                run.save_checkpoint(&checkpoint)?;
            }
            Ok(())
        },
    )?;
    let (before, after) = (outcome.before, outcome.after);
    let candidate = outcome.kept_step.is_some();
    let adapter = out.join("adapter.gguf");
    let info = AdapterInfo {
        architecture: "llama".into(),
        name: format!(
            "mongars-{}",
            out.file_name().and_then(|n| n.to_str()).unwrap_or("run")
        ),
    };
    write_gguf(&run.lora, &info, &adapter)?;
    let record = Record {
        created_at: chrono::Utc::now().to_rfc3339(),
        status: if candidate { "candidate" } else { "rejected" },
        base_model: model_path.display().to_string(),
        base_model_sha256: sha256_file(&model_path)?,
        dataset_sha256: sha256_file(&data)?,
        samples_train: own,
        replay_examples: train_set.len() - own,
        samples_redacted: with_pii,
        samples_held_out: held_set.len(),
        steps: outcome.steps,
        kept_step: outcome.kept_step,
        training_seconds: outcome.seconds,
        tokens_per_second: outcome.tokens_per_second(),
        held_out_perplexity_before: before.held_out,
        held_out_perplexity_after: after.held_out,
        general_perplexity_before: before.general,
        general_perplexity_after: after.general,
        objective: if mntp { "mntp" } else { "supervised" },
        rank: lora.rank,
        alpha: lora.alpha,
        targets: t.targets.clone(),
        layers: lora.layers.clone(),
    };
    let json = PathBuf::from(&out).join("adapter.json");
    std::fs::write(&json, serde_json::to_string_pretty(&record)?)?;
    println!(
        "held-out perplexity {:.2} -> {:.2} ({:+.1}%), general {:.2} -> {:.2} ({:+.1}%){}",
        before.held_out,
        after.held_out,
        (after.held_out / before.held_out - 1.0) * 100.0,
        before.general,
        after.general,
        (after.general / before.general - 1.0) * 100.0,
        outcome
            .kept_step
            .map_or(String::new(), |s| format!(", adapter of step {s}"))
    );
    println!(
        "{}: {} ({})",
        if candidate { "candidate" } else { "rejected" },
        adapter.display(),
        json.display()
    );
    Ok(0)
}
