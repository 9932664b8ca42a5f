//! Switching the engine's LoRA adapter while it serves.
//!
//! llama.cpp loads an adapter through `&mut LlamaModel` and applies it per
//! context, so a switch builds a whole engine beside the running one: the
//! model again, the adapter on it, a context with the adapter set. Only when
//! that engine is ready does it replace the running one; requests already
//! queued or running finish on the old engine, which then stops. A switch
//! that fails leaves the running engine as it was.

use super::load::{check_gguf, load_model, start_engine};
use super::{EmbeddedBackend, Engine};
use mongars_core::ports::LlmError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An adapter to run: a GGUF LoRA file made for the engine's model.
#[derive(Debug, Clone)]
pub struct AdapterFile {
    /// The registry's name for it, shown in health and model listings.
    pub id: String,
    pub path: PathBuf,
    /// How strongly it applies (1 = as trained).
    pub scale: f32,
}

/// The adapter an engine runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAdapter {
    pub id: String,
    pub scale: f32,
}

impl EmbeddedBackend {
    /// The adapter new requests are generated with, if any.
    pub fn active_adapter(&self) -> Option<ActiveAdapter> {
        self.current().adapter.clone()
    }

    /// Serve new requests with `adapter` (or the bare model with `None`),
    /// and return how long building the new engine took. Blocking: run it
    /// off the async runtime. Requests in flight are not disturbed.
    pub fn switch(&self, adapter: Option<&AdapterFile>) -> Result<Duration, LlmError> {
        let _one = self.switching.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let mut model = load_model(&self.config.weights_path)?;
        let lora = match adapter {
            Some(file) => {
                if !(file.scale.is_finite() && file.scale > 0.0) {
                    return Err(LlmError::Failed(format!(
                        "adapter {}: the scale must be a positive number",
                        file.id
                    )));
                }
                check_gguf(&file.path, "")?;
                let lora = model.lora_adapter_init(&file.path).map_err(|e| {
                    LlmError::Unavailable(format!(
                        "adapter {} ({}) does not fit the model: {e}",
                        file.id,
                        file.path.display()
                    ))
                })?;
                let info = super::ActiveAdapter {
                    id: file.id.clone(),
                    scale: file.scale,
                };
                Some((lora, info))
            }
            None => None,
        };
        let engine: Engine = start_engine(&self.config, model, lora, &self.load)?;
        let took = started.elapsed();
        let old = {
            let mut current = self.engine.write().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *current, Arc::new(engine))
        };
        tracing::info!(
            adapter = adapter.map_or("none", |a| a.id.as_str()),
            was = old.adapter.as_ref().map_or("none", |a| a.id.as_str()),
            took_ms = took.as_millis() as u64,
            "embedded engine switched"
        );
        // The old engine's thread drains its queue and stops once the last
        // request holding it has been queued.
        drop(old);
        Ok(took)
    }
}
