//! all-MiniLM-L6-v2 in-process: a BERT encoder run by candle on a worker
//! thread of its own, so that the async runtime never waits on matrix
//! products. Requests that arrive while the worker is busy are embedded
//! together in the next batch, sorted by length to keep padding small.

mod bert;

use async_trait::async_trait;
use bert::{Bert, BertConfig};
use candle_core::{Device, Tensor};
use mongars_core::ports::{EmbedError, Embedder, Embeddings, MAX_EMBED_BATCH};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use tokenizers::{Tokenizer, TruncationParams};
use tokio::sync::oneshot;

/// Where the model lives and how it runs.
#[derive(Debug, Clone)]
pub struct MiniLmOptions {
    /// Folder with `model.safetensors`, `tokenizer.json` and `config.json`.
    pub dir: PathBuf,
    /// Longest input in tokens, special tokens included; longer is cut.
    pub max_tokens: usize,
    /// Most texts in one forward pass.
    pub batch_size: usize,
}

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Embeddings, EmbedError>>,
}

/// The in-process embedder. Cheap to share; dropping the last handle stops
/// the worker thread.
pub struct MiniLm {
    name: String,
    dims: usize,
    jobs: std_mpsc::Sender<Job>,
}

struct Engine {
    bert: Bert,
    tokenizer: Tokenizer,
    batch_size: usize,
}

impl MiniLm {
    /// Load the model and start its worker. Fails with a message naming the
    /// missing or broken file.
    pub fn load(options: &MiniLmOptions) -> Result<Self, EmbedError> {
        let (engine, dims) = Engine::load(options)?;
        let name = options
            .dir
            .file_name()
            .map_or_else(|| "minilm".into(), |n| n.to_string_lossy().into_owned());
        let (jobs, rx) = std_mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("embedder".into())
            .spawn(move || engine.run(rx))
            .map_err(|e| EmbedError::Unavailable(format!("cannot start the embedder: {e}")))?;
        Ok(Self { name, dims, jobs })
    }
}

#[async_trait]
impl Embedder for MiniLm {
    fn model(&self) -> &str {
        &self.name
    }

    fn dimensions(&self) -> usize {
        self.dims
    }

    async fn embed(&self, texts: &[String]) -> Result<Embeddings, EmbedError> {
        check_batch(texts)?;
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                texts: texts.to_vec(),
                reply,
            })
            .map_err(|_| EmbedError::Unavailable("the embedder stopped".into()))?;
        rx.await
            .map_err(|_| EmbedError::Unavailable("the embedder stopped".into()))?
    }
}

/// Refuse empty and oversized batches before any work.
pub(crate) fn check_batch(texts: &[String]) -> Result<(), EmbedError> {
    if texts.is_empty() {
        return Err(EmbedError::Invalid("nothing to embed".into()));
    }
    if texts.len() > MAX_EMBED_BATCH {
        return Err(EmbedError::Invalid(format!(
            "at most {MAX_EMBED_BATCH} texts per request"
        )));
    }
    Ok(())
}

impl Engine {
    fn load(o: &MiniLmOptions) -> Result<(Self, usize), EmbedError> {
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
        let broken = |p: &Path, e: &dyn std::fmt::Display| {
            EmbedError::Unavailable(format!("cannot load {}: {e}", p.display()))
        };
        let config_path = file("config.json")?;
        let config: BertConfig = std::fs::read(&config_path)
            .map_err(|e| broken(&config_path, &e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| broken(&config_path, &e)))?;
        let weights = file("model.safetensors")?;
        let vb = bert::var_builder(&weights).map_err(|e| broken(&weights, &e))?;
        let bert = Bert::load(vb, &config).map_err(|e| broken(&weights, &e))?;
        let tok_path = file("tokenizer.json")?;
        let mut tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| broken(&tok_path, &e))?;
        let max_length = o.max_tokens.clamp(8, bert.max_positions);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|e| broken(&tok_path, &e))?;
        tokenizer.with_padding(None);
        let engine = Self {
            bert,
            tokenizer,
            batch_size: o.batch_size.clamp(1, MAX_EMBED_BATCH),
        };
        Ok((engine, config.hidden_size))
    }

    fn run(self, rx: std_mpsc::Receiver<Job>) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            let mut queued = jobs[0].texts.len();
            while queued < self.batch_size {
                match rx.try_recv() {
                    Ok(job) => {
                        queued += job.texts.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let texts: Vec<&str> = jobs
                .iter()
                .flat_map(|j| j.texts.iter().map(String::as_str))
                .collect();
            let result = self.embed_all(&texts);
            let mut at = 0;
            for job in jobs {
                let n = job.texts.len();
                let part = match &result {
                    Ok((vectors, tokens)) => Ok(Embeddings {
                        vectors: vectors[at..at + n].to_vec(),
                        tokens: tokens[at..at + n].iter().sum(),
                    }),
                    Err(e) => Err(e.clone()),
                };
                at += n;
                let _ = job.reply.send(part);
            }
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
        bert::rows(&self.bert.embed(&ids, &mask)?)
    }
}
