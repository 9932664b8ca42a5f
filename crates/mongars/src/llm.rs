//! Building the generation backend and the conversation service from settings.

use crate::hardware::HardwareProfile;
use anyhow::Context;
use mongars_config::{LlmBackendKind, Settings};
use mongars_core::conversation::{ConversationOptions, ConversationService};
use mongars_core::domain::SamplingParams;
use mongars_core::ports::{LlmBackend, SystemClock};
use mongars_core::ratelimit::RateLimiter;
use mongars_llm::embedded::{EmbeddedConfig, load_backend};
use mongars_store::{Database, SqlTurnRepository};
use std::sync::Arc;

/// Engine settings with `threads = 0` resolved to the CPUs this process may use.
pub fn embedded_config(settings: &Settings) -> EmbeddedConfig {
    let e = &settings.llm.embedded;
    let threads = match e.threads {
        0 => HardwareProfile::detect().usable_cpus(),
        n => n as usize,
    };
    EmbeddedConfig {
        model_path: e.model_path.clone(),
        threads,
        context_tokens: e.context_tokens,
        parallel: e.parallel as usize,
        queue_capacity: e.queue_capacity as usize,
    }
}

/// The backend named by `llm.backend`. Loading a model is blocking work, so
/// it runs off the async runtime.
pub async fn backend_from_settings(settings: &Settings) -> anyhow::Result<Arc<dyn LlmBackend>> {
    match settings.llm.backend {
        LlmBackendKind::Embedded => {
            let cfg = embedded_config(settings);
            let backend = tokio::task::spawn_blocking(move || load_backend(&cfg))
                .await
                .context("model loading task failed")?
                .context("llm.embedded.model_path")?;
            Ok(Arc::new(backend))
        }
    }
}

pub fn sampling_defaults(settings: &Settings) -> SamplingParams {
    let s = &settings.llm.sampling;
    SamplingParams {
        temperature: s.temperature as f32,
        top_p: s.top_p as f32,
        max_tokens: s.max_tokens,
        stop: s.stop.clone(),
        seed: None,
    }
}

pub fn conversation_service(
    settings: &Settings,
    db: &Database,
    llm: Arc<dyn LlmBackend>,
) -> ConversationService {
    let c = &settings.conversation;
    ConversationService::new(
        llm,
        Arc::new(SqlTurnRepository::new(db.clone())),
        RateLimiter::new(c.rate_limit_per_minute, c.rate_limit_burst),
        Arc::new(SystemClock),
        ConversationOptions {
            system_prompt: c.system_prompt.clone(),
            history_turns: c.history_turns,
            max_message_chars: c.max_message_chars as usize,
            sampling: sampling_defaults(settings),
        },
    )
}
