//! Loading the model and starting an engine thread.

use super::switch::ActiveAdapter;
use super::worker::run_worker;
use super::{EmbeddedBackend, EmbeddedConfig, Engine, Load, Setup, Shared};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatTemplate, LlamaLoraAdapter, LlamaModel};
use mongars_core::ports::LlmError;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock, mpsc};

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

/// Whether `path` can be read and starts like a GGUF file.
pub(crate) fn check_gguf(path: &Path, hint: &str) -> Result<(), LlmError> {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| {
            LlmError::Unavailable(format!("{} cannot be read ({e}){hint}", path.display()))
        })?;
    if &magic != b"GGUF" {
        return Err(LlmError::Unavailable(format!(
            "{} is not a GGUF file{hint}",
            path.display()
        )));
    }
    Ok(())
}

/// The model at `path`, read by llama.cpp. Never reaches the network: a
/// missing or corrupt file is a clear error naming the path.
pub(crate) fn load_model(path: &Path) -> Result<LlamaModel, LlmError> {
    check_gguf(path, &format!(": {FETCH_HINT}"))?;
    LlamaModel::load_from_file(llama_backend()?, path, &LlamaModelParams::default()).map_err(|e| {
        LlmError::Unavailable(format!(
            "cannot load {} ({e}); the file may be damaged: {FETCH_HINT}",
            path.display()
        ))
    })
}

/// Load the model at `cfg.model_path` and start the engine thread.
pub fn load_backend(cfg: &EmbeddedConfig) -> Result<EmbeddedBackend, LlmError> {
    let loaded = super::weights::load_weights(&cfg.model_path, &cfg.weights, cfg.threads)?;
    let model = loaded.model;
    let n_ctx = (cfg.context_tokens as usize)
        .min(model.n_ctx_train() as usize)
        .max(64);
    let model_name = cfg
        .model_path
        .file_stem()
        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
    let setup = Setup {
        config: cfg.clone(),
        model_name,
        n_ctx,
        weights_path: loaded.path,
        weights_outcome: loaded.outcome,
    };
    let load = Arc::new(Load::new(cfg.max_queue_wait));
    let engine = start_engine(&setup, model, None, &load)?;
    tracing::info!(
        model = %setup.model_name,
        n_ctx,
        threads = cfg.threads.max(1),
        parallel = cfg.parallel.max(1),
        queue = cfg.queue_capacity.max(1),
        max_queue_wait_ms = cfg.max_queue_wait.as_millis() as u64,
        move_kept_turns = engine.shared.move_kept_turns,
        weights = ?setup.weights_outcome,
        worth_moving = engine.shared.worth_moving,
        "embedded model loaded"
    );
    Ok(EmbeddedBackend {
        config: setup,
        engine: RwLock::new(Arc::new(engine)),
        load,
        switching: std::sync::Mutex::new(()),
    })
}

/// Start an engine thread on `model`, with `adapter` applied to its context,
/// and wait until its context exists.
pub(crate) fn start_engine(
    setup: &Setup,
    model: LlamaModel,
    adapter: Option<(LlamaLoraAdapter, ActiveAdapter)>,
    load: &Arc<Load>,
) -> Result<Engine, LlmError> {
    let template = model
        .chat_template(None)
        .or_else(|_| LlamaChatTemplate::new("chatml"))
        .map_err(|e| LlmError::Unavailable(format!("chat template: {e}")))?;
    let cfg = &setup.config;
    let shared = Arc::new(Shared {
        template,
        model_name: setup.model_name.clone(),
        n_ctx: setup.n_ctx,
        threads: cfg.threads.max(1),
        parallel: cfg.parallel.max(1),
        move_kept_turns: cfg.move_kept_turns && super::reuse::model_can_move(&model),
        worth_moving: super::reuse::worth_moving(&model, setup.n_ctx * cfg.parallel.max(1)),
        model,
        load: load.clone(),
    });
    let (lora, active) = match adapter {
        Some((lora, info)) => (Some((lora, info.scale)), Some(info)),
        None => (None, None),
    };
    let backend = llama_backend()?;
    let (jobs, queue) = mpsc::sync_channel(cfg.queue_capacity.max(1));
    let (ready_tx, ready_rx) = mpsc::channel();
    let engine = shared.clone();
    std::thread::Builder::new()
        .name("mongars-llm".into())
        .spawn(move || run_worker(backend, &engine, lora, queue, ready_tx))
        .map_err(|e| LlmError::Unavailable(format!("cannot start the engine thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(Engine {
            shared,
            jobs,
            adapter: active,
        }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(LlmError::Unavailable(
            "the engine thread died while starting".into(),
        )),
    }
}
