//! Loading the model and starting the engine thread.

use super::worker::run_worker;
use super::{EmbeddedBackend, EmbeddedConfig, Shared};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use mongars_core::ports::LlmError;
use std::io::Read;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock, mpsc};

/// llama.cpp's backend is process-wide and may be initialised only once.
pub(crate) fn llama_backend() -> Result<&'static LlamaBackend, LlmError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LlmError::Unavailable(format!("llama.cpp backend: {e}")))
}

const FETCH_HINT: &str = "run `make models` (scripts/models.sh) to fetch the default model, \
                          or set llm.embedded.model_path to a GGUF file";

/// Load the model at `cfg.model_path` and start the engine thread. Never reaches
/// the network: a missing or corrupt file is a clear error naming the path.
pub fn load_backend(cfg: &EmbeddedConfig) -> Result<EmbeddedBackend, LlmError> {
    let path = &cfg.model_path;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| {
            LlmError::Unavailable(format!(
                "model file {} cannot be read ({e}): {FETCH_HINT}",
                path.display()
            ))
        })?;
    if &magic != b"GGUF" {
        return Err(LlmError::Unavailable(format!(
            "{} is not a GGUF model file: {FETCH_HINT}",
            path.display()
        )));
    }
    let backend = llama_backend()?;
    let model =
        LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).map_err(|e| {
            LlmError::Unavailable(format!(
                "cannot load {} ({e}); the file may be damaged: {FETCH_HINT}",
                path.display()
            ))
        })?;
    let template = model
        .chat_template(None)
        .or_else(|_| LlamaChatTemplate::new("chatml"))
        .map_err(|e| LlmError::Unavailable(format!("chat template: {e}")))?;
    let n_ctx = (cfg.context_tokens as usize)
        .min(model.n_ctx_train() as usize)
        .max(64);
    let model_name = path
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
    let threads = cfg.threads.max(1);
    let shared = Arc::new(Shared {
        model,
        template,
        model_name,
        n_ctx,
        threads,
        parallel: cfg.parallel.max(1),
        active: AtomicUsize::new(0),
        queued: AtomicUsize::new(0),
        counters: Default::default(),
    });

    let (jobs, queue) = mpsc::sync_channel(cfg.queue_capacity.max(1));
    let (ready_tx, ready_rx) = mpsc::channel();
    let engine = shared.clone();
    std::thread::Builder::new()
        .name("mongars-llm".into())
        .spawn(move || run_worker(backend, &engine, queue, ready_tx))
        .map_err(|e| LlmError::Unavailable(format!("cannot start the engine thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(LlmError::Unavailable(
                "the engine thread died while starting".into(),
            ));
        }
    }
    tracing::info!(
        model = %shared.model_name,
        n_ctx,
        threads,
        parallel = cfg.parallel.max(1),
        queue = cfg.queue_capacity.max(1),
        "embedded model loaded"
    );
    Ok(EmbeddedBackend { shared, jobs })
}
