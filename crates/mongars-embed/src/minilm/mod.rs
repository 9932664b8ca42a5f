//! all-MiniLM-L6-v2 in-process: a BERT encoder (weights read with candle,
//! products on packed panels of our own, see [`kernel`]) on feeder threads
//! of its own, one per compute thread, so that the async runtime never
//! waits on matrix products. Requests that arrive while the feeders are
//! busy are embedded together in the next batch, laid end to end without
//! padding. The projections run on
//! half-precision weights (the default), f32 or 8-bit ones; a bounded cache answers texts
//! embedded lately without a forward pass.

mod bert;
mod cache;
mod engine;
mod kernel;
mod lazy;
mod math;
mod proj;
mod reference;

pub use lazy::LazyMiniLm;
pub use proj::Precision;

use async_trait::async_trait;
use cache::VectorCache;
use engine::Engine;
use mongars_core::ports::{EmbedError, Embedder, Embeddings, MAX_EMBED_BATCH};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
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
    /// Weights of the projections: half precision, f32 or 8-bit blocks.
    pub precision: Precision,
    /// Texts whose vectors are kept for reuse; 0 keeps none.
    pub cache_entries: usize,
    /// Which implementation of the encoder runs.
    pub kernel: Kernel,
}

/// The implementation of the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Plain rows, packed weight panels, no padding: the serving path.
    #[default]
    Packed,
    /// The same model on candle tensors with candle's matrix products, in
    /// f32 whatever the precision: the baseline benches and tests compare
    /// against.
    Candle,
}

impl MiniLmOptions {
    /// The defaults of the settings file for the model in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            max_tokens: 256,
            batch_size: 32,
            precision: Precision::F16,
            cache_entries: 1024,
            kernel: Kernel::Packed,
        }
    }
}

/// Vectors and token counts, one of each per text, in order.
type Rows = (Vec<Vec<f32>>, Vec<usize>);

struct Job {
    texts: Vec<String>,
    reply: oneshot::Sender<Result<Rows, EmbedError>>,
}

/// Counters of the worker, read by benchmarks and tests.
#[derive(Debug, Default)]
struct Stats {
    forwards: AtomicU64,
    texts: AtomicU64,
    largest: AtomicU64,
    hits: AtomicU64,
}

/// What the embedder has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MiniLmStats {
    /// Forward passes run.
    pub forwards: u64,
    /// Texts embedded by them.
    pub texts: u64,
    /// The most texts in one forward pass.
    pub largest_batch: u64,
    /// Texts answered from the cache.
    pub cache_hits: u64,
}

/// Start the process's compute pool (rayon's, which the forward pass runs
/// in) with its threads named `embed-compute`, so that `top -H`, profiles
/// and `mongars bench chat` tell them from the `embedder` thread that
/// queues the work; unnamed, they inherit the name of the thread that first
/// used the pool. Nothing happens when the pool is running already (a
/// second embedder, or a library that used it first).
fn name_compute_threads() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|_| "embed-compute".into())
        .build_global();
}

/// The in-process embedder. Cheap to share; dropping the last handle stops
/// the feeder threads.
pub struct MiniLm {
    name: String,
    dims: usize,
    jobs: std_mpsc::Sender<Job>,
    cache: VectorCache,
    stats: Arc<Stats>,
}

impl MiniLm {
    /// Load the model and start its worker. Fails with a message naming the
    /// missing or broken file.
    pub fn load(options: &MiniLmOptions) -> Result<Self, EmbedError> {
        name_compute_threads();
        let stats = Arc::new(Stats::default());
        let (engine, dims) = Engine::load(options, stats.clone())?;
        let name = model_name(options);
        tracing::info!(
            model = %name,
            precision = ?options.precision,
            kernel = ?options.kernel,
            "embedding model loaded"
        );
        let (jobs, rx) = std_mpsc::channel::<Job>();
        let (engine, rx) = (Arc::new(engine), Arc::new(Mutex::new(rx)));
        // One feeder per compute thread. Alone, a batch's products are split
        // across the compute threads; when several users' batches run at
        // once, each compute thread keeps to its own batch (a band nobody
        // steals is run by the thread that queued it), so no thread waits
        // for another's half of a product.
        for _ in 0..rayon::current_num_threads().max(1) {
            let (engine, rx) = (engine.clone(), rx.clone());
            std::thread::Builder::new()
                .name("embedder".into())
                .spawn(move || engine.run(&rx))
                .map_err(|e| EmbedError::Unavailable(format!("cannot start the embedder: {e}")))?;
        }
        Ok(Self {
            name,
            dims,
            jobs,
            cache: VectorCache::new(options.cache_entries),
            stats,
        })
    }

    pub fn stats(&self) -> MiniLmStats {
        MiniLmStats {
            forwards: self.stats.forwards.load(Relaxed),
            texts: self.stats.texts.load(Relaxed),
            largest_batch: self.stats.largest.load(Relaxed),
            cache_hits: self.stats.hits.load(Relaxed),
        }
    }

    async fn run(&self, texts: Vec<String>) -> Result<Rows, EmbedError> {
        let (reply, rx) = oneshot::channel();
        let stopped = || EmbedError::Unavailable("the embedder stopped".into());
        self.jobs
            .send(Job { texts, reply })
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
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
        let mut found: Vec<Option<(Vec<f32>, usize)>> =
            texts.iter().map(|t| self.cache.get(t)).collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| found[i].is_none()).collect();
        let hits = (texts.len() - missing.len()) as u64;
        self.stats.hits.fetch_add(hits, Relaxed);
        if !missing.is_empty() {
            let ask = missing.iter().map(|&i| texts[i].clone()).collect();
            let (vectors, tokens) = self.run(ask).await?;
            for ((&i, vector), n) in missing.iter().zip(vectors).zip(tokens) {
                self.cache.put(&texts[i], &vector, n);
                found[i] = Some((vector, n));
            }
        }
        let (vectors, tokens): (Vec<_>, Vec<_>) = found.into_iter().flatten().unzip();
        Ok(Embeddings {
            vectors,
            tokens: tokens.iter().sum(),
        })
    }
}

/// The model's name: its folder's.
fn model_name(options: &MiniLmOptions) -> String {
    options
        .dir
        .file_name()
        .map_or_else(|| "minilm".into(), |n| n.to_string_lossy().into_owned())
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
