//! The feeder threads of the in-process embedder: each takes every request
//! queued while the feeders were busy into one batch (up to the batch size)
//! and runs the encoder on it in the compute pool (texts sorted by length,
//! which keeps the candle baseline's padding small).

use super::bert::{self, Bert, BertConfig};
use super::kernel::splitting;
use super::reference::Reference;
use super::{Job, Kernel, MiniLmOptions, Stats};
use candle_core::{Device, Tensor};
use mongars_core::ports::{EmbedError, MAX_EMBED_BATCH};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use tokenizers::{Tokenizer, TruncationParams};

/// The three files of the model, present, with the configuration read.
pub(super) struct ModelFiles {
    pub config: BertConfig,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
}

fn broken(p: &Path, e: &dyn std::fmt::Display) -> EmbedError {
    EmbedError::Unavailable(format!("cannot load {}: {e}", p.display()))
}

impl ModelFiles {
    /// Fails with the path of the first missing or unreadable file.
    pub fn find(o: &MiniLmOptions) -> Result<Self, EmbedError> {
        let file = |name: &str| -> Result<PathBuf, EmbedError> {
            let p = o.dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(EmbedError::Unavailable(format!(
                    "{} is missing (run `make models`)",
                    p.display()
                )))
            }
        };
        let config_path = file("config.json")?;
        let config: BertConfig = std::fs::read(&config_path)
            .map_err(|e| broken(&config_path, &e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| broken(&config_path, &e)))?;
        Ok(Self {
            config,
            weights: file("model.safetensors")?,
            tokenizer: file("tokenizer.json")?,
        })
    }
}

enum Model {
    Packed(Box<Bert>),
    Candle(Reference),
}

pub(super) struct Engine {
    model: Model,
    tokenizer: Tokenizer,
    batch_size: usize,
    stats: Arc<Stats>,
    /// Batches in the compute pool now.
    running: AtomicUsize,
}

impl Engine {
    pub(super) fn load(o: &MiniLmOptions, stats: Arc<Stats>) -> Result<(Self, usize), EmbedError> {
        let files = ModelFiles::find(o)?;
        let (config, weights, tok_path) = (files.config, files.weights, files.tokenizer);
        let vb = bert::var_builder(&weights).map_err(|e| broken(&weights, &e))?;
        let (model, max_positions) = match o.kernel {
            Kernel::Packed => {
                let bert =
                    Bert::load(vb, &config, o.precision).map_err(|e| broken(&weights, &e))?;
                let max = bert.max_positions;
                (Model::Packed(Box::new(bert)), max)
            }
            Kernel::Candle => {
                let model = Reference::load(vb, &config).map_err(|e| broken(&weights, &e))?;
                let max = model.max_positions;
                (Model::Candle(model), max)
            }
        };
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| broken(&tok_path, &e))?;
        let max_length = o.max_tokens.clamp(8, max_positions);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| broken(&tok_path, &e))?;
        tokenizer.with_padding(None);
        let engine = Self {
            model,
            tokenizer,
            batch_size: o.batch_size.clamp(1, MAX_EMBED_BATCH),
            stats,
            running: AtomicUsize::new(0),
        };
        Ok((engine, config.hidden_size))
    }

    /// Serve batches from the queue until every sender is gone. Several
    /// feeders may share one queue: each takes what is waiting as one
    /// batch, and the next feeder waits for the queue meanwhile.
    pub(super) fn run(&self, rx: &Mutex<std_mpsc::Receiver<Job>>) {
        loop {
            let jobs = {
                let Ok(rx) = rx.lock() else { return };
                let Ok(first) = rx.recv() else { return };
                gather(first, &rx, self.batch_size)
            };
            self.answer(jobs);
        }
    }

    /// Embed one batch and answer each of its jobs.
    fn answer(&self, jobs: Vec<Job>) {
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        // The forward pass runs on a compute thread, so that the
        // products it splits across the compute threads hand work over
        // by stealing, not by waking this thread at every product. Only a
        // batch that starts while no other runs splits its products.
        let alone = self.running.fetch_add(1, Relaxed) == 0;
        let result = rayon::scope(|_| splitting(alone, || self.embed_all(&texts)));
        self.running.fetch_sub(1, Relaxed);
        let mut at = 0;
        for job in jobs {
            let n = job.texts.len();
            let part = match &result {
                Ok((vectors, tokens)) => {
                    Ok((vectors[at..at + n].to_vec(), tokens[at..at + n].to_vec()))
                }
                Err(e) => Err(e.clone()),
            };
            at += n;
            let _ = job.reply.send(part);
        }
    }

    /// Vectors and token counts of `texts`, in order.
    fn embed_all(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, Vec<usize>), EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Failed(format!("tokenizer: {e}")))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let tokens: Vec<usize> = ids.iter().map(|i| i.len()).collect();
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut vectors = vec![Vec::new(); ids.len()];
        for chunk in order.chunks(self.batch_size) {
            self.stats.forwards.fetch_add(1, Relaxed);
            self.stats.texts.fetch_add(chunk.len() as u64, Relaxed);
            self.stats.largest.fetch_max(chunk.len() as u64, Relaxed);
            let rows = self
                .forward(chunk.iter().map(|&i| ids[i]))
                .map_err(|e| EmbedError::Failed(format!("model: {e}")))?;
            for (&i, row) in chunk.iter().zip(rows) {
                vectors[i] = row;
            }
        }
        Ok((vectors, tokens))
    }

    fn forward<'a>(
        &self,
        batch: impl Iterator<Item = &'a [u32]>,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let batch: Vec<&[u32]> = batch.collect();
        let model = match &self.model {
            Model::Packed(bert) => return bert.embed(&batch),
            Model::Candle(model) => model,
        };
        let width = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * width);
        let mut mask = Vec::with_capacity(batch.len() * width);
        for seq in &batch {
            ids.extend_from_slice(seq);
            ids.extend(std::iter::repeat_n(0u32, width - seq.len()));
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, width - seq.len()));
        }
        let shape = (batch.len(), width);
        let ids = Tensor::from_vec(ids, shape, &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, shape, &Device::Cpu)?;
        bert::rows(&model.embed(&ids, &mask)?)
    }
}

/// `first` and the jobs already queued behind it, up to `batch_size` texts
/// (a single job larger than that still goes whole; it is split into
/// forward passes later).
fn gather(first: Job, rx: &std_mpsc::Receiver<Job>, batch_size: usize) -> Vec<Job> {
    let mut queued = first.texts.len();
    let mut jobs = vec![first];
    while queued < batch_size {
        match rx.try_recv() {
            Ok(job) => {
                queued += job.texts.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(n: usize) -> Job {
        Job {
            texts: vec!["x".into(); n],
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    #[test]
    fn everything_queued_behind_the_first_request_joins_its_batch() {
        let (tx, rx) = std_mpsc::channel();
        for _ in 0..5 {
            tx.send(job(1)).unwrap();
        }
        let first = rx.recv().unwrap();
        assert_eq!(gather(first, &rx, 32).len(), 5);
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_batch_stops_at_the_batch_size() {
        let (tx, rx) = std_mpsc::channel();
        for n in [3, 3, 3, 1] {
            tx.send(job(n)).unwrap();
        }
        let first = rx.recv().unwrap();
        let batch = gather(first, &rx, 8);
        assert_eq!(batch.iter().map(|j| j.texts.len()).sum::<usize>(), 9);
        let rest = gather(rx.recv().unwrap(), &rx, 8);
        assert_eq!(rest.len(), 1);
    }
}
