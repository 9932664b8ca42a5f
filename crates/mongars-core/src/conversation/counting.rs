//! A backend for tests of prompt assembly: it only counts tokens.

use crate::domain::{ChatMessage, ModelRole};
use crate::ports::LlmBackend;

/// Counts one token per word and four per message, and keeps how many
/// prompts each call counted.
#[derive(Default)]
pub(crate) struct Words(pub std::sync::Mutex<Vec<usize>>);

#[async_trait::async_trait]
impl LlmBackend for Words {
    fn name(&self) -> &str {
        "words"
    }
    fn model(&self) -> &str {
        "words"
    }
    fn context_window(&self) -> usize {
        4096
    }
    async fn count_tokens(
        &self,
        _role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, crate::ports::LlmError> {
        self.0.lock().unwrap().push(prompts.len());
        Ok(prompts
            .iter()
            .map(|p| {
                p.iter()
                    .map(|m| m.content.split_whitespace().count() + 4)
                    .sum()
            })
            .collect())
    }
    async fn generate(
        &self,
        _: crate::domain::GenerationRequest,
    ) -> Result<crate::ports::GenerationStream, crate::ports::LlmError> {
        Err(crate::ports::LlmError::Unavailable("counts only".into()))
    }
    async fn health(&self) -> crate::ports::BackendHealth {
        crate::ports::BackendHealth {
            healthy: true,
            detail: String::new(),
            active: 0,
            queued: 0,
        }
    }
}
