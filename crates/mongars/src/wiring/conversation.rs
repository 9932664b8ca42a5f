//! The chat pipeline and its rate limiter from `[conversation]`.

use super::llm::sampling_defaults;
use mongars_config::Settings;
use mongars_core::conversation::{ConversationOptions, ConversationService, Mind};
use mongars_core::ports::{Clock, LlmBackend, RateLimiter};
use mongars_core::ratelimit::LocalRateLimiter;
use mongars_store::{Database, SqlTurnRepository};
use std::sync::Arc;

/// The chat rate limiter of one process, from `[conversation]`.
pub fn local_limiter(settings: &Settings, clock: &Arc<dyn Clock>) -> Arc<dyn RateLimiter> {
    let c = &settings.conversation;
    Arc::new(LocalRateLimiter::new(
        c.rate_limit_per_minute,
        c.rate_limit_burst,
        clock.clone(),
    ))
}

/// The chat pipeline on `db`, generating with `llm`, drawing on `mind`.
pub fn conversation_service(
    settings: &Settings,
    db: &Database,
    llm: Arc<dyn LlmBackend>,
    limiter: Arc<dyn RateLimiter>,
    mind: Mind,
    clock: &Arc<dyn Clock>,
) -> ConversationService {
    let c = &settings.conversation;
    ConversationService::new(
        llm,
        Arc::new(SqlTurnRepository::new(db.clone())),
        limiter,
        clock.clone(),
        mind,
        ConversationOptions {
            system_prompt: c.system_prompt.clone(),
            history_turns: c.history_turns,
            max_message_chars: c.max_message_chars as usize,
            sampling: sampling_defaults(settings),
            owner: Some(crate::instance::current().to_string()),
        },
    )
}
