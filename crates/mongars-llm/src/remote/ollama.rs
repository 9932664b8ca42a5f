//! Ollama: `POST /api/chat` streamed as NDJSON, `GET /api/tags` for health
//! and presence of the model, `POST /api/pull` (NDJSON progress) to download.

use super::scrubbed;
use super::{
    Lines, Progress, RemoteConfig, Sender, client, finish_reason, join, list_names, status_error,
};
use super::{expect_content_type, transport, with_auth};
use async_trait::async_trait;
use mongars_core::domain::{ChatMessage, GenerationEvent, GenerationRequest};
use mongars_core::ports::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, ProgressSink, ProvisionOutcome,
    PullProgress, estimate_prompt_tokens,
};
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

pub struct OllamaBackend {
    cfg: RemoteConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ChatLine {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u32>,
    eval_count: Option<u32>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: String,
}

#[derive(Deserialize)]
struct PullLine {
    status: Option<String>,
    total: Option<u64>,
    completed: Option<u64>,
    error: Option<String>,
}

impl OllamaBackend {
    pub fn new(cfg: RemoteConfig) -> Result<Self, LlmError> {
        if cfg.urls.len() != 1 {
            return Err(LlmError::Unavailable("ollama takes exactly one url".into()));
        }
        Ok(Self {
            http: client(&cfg)?,
            cfg,
        })
    }

    fn url(&self, path: &str) -> String {
        join(&self.cfg.urls[0], path)
    }

    /// Names of the models the server has.
    pub async fn models(&self) -> Result<Vec<String>, LlmError> {
        list_names(
            &self.http,
            &self.cfg,
            &self.url("/api/tags"),
            "models",
            &["name", "model"],
        )
        .await
    }

    async fn pull(&self, progress: ProgressSink) -> Result<(), LlmError> {
        let body = json!({ "model": self.cfg.model, "stream": true });
        let resp = with_auth(self.http.post(self.url("/api/pull")), &self.cfg)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &self.cfg).await);
        }
        expect_content_type(&resp, &["json"])?;
        let mut lines = Lines::new(resp);
        while let Some(line) = lines.next_line().await? {
            if line.trim().is_empty() {
                continue;
            }
            let p: PullLine = serde_json::from_str(&line)
                .map_err(|e| LlmError::Malformed(format!("bad pull progress line: {e}")))?;
            if let Some(error) = p.error {
                let error = super::upstream_message(&error, &self.cfg);
                return Err(LlmError::Failed(format!(
                    "pull of {}: {error}",
                    self.cfg.model
                )));
            }
            let status = p.status.unwrap_or_default();
            let finished = status == "success";
            progress(PullProgress {
                status,
                completed: p.completed,
                total: p.total,
            });
            if finished {
                return Ok(());
            }
        }
        Err(LlmError::Malformed("pull ended without success".into()))
    }
}

/// Whether `have` names `want`, taking an omitted tag as `:latest`.
fn same_model(have: &str, want: &str) -> bool {
    let norm = |m: &str| {
        if m.contains(':') {
            m.to_string()
        } else {
            format!("{m}:latest")
        }
    };
    norm(have) == norm(want)
}

#[async_trait]
impl LlmBackend for OllamaBackend {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn model(&self) -> &str {
        &self.cfg.model
    }

    fn context_window(&self) -> usize {
        self.cfg.context_tokens
    }

    async fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<usize, LlmError> {
        Ok(estimate_prompt_tokens(messages))
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let started = Instant::now();
        let prompt_estimate = estimate_prompt_tokens(&request.messages) as u32;
        let s = &request.sampling;
        let mut options = json!({
            "temperature": s.temperature,
            "top_p": s.top_p,
            "num_predict": s.max_tokens,
            "num_ctx": self.cfg.context_tokens,
        });
        if !s.stop.is_empty() {
            options["stop"] = json!(s.stop);
        }
        if let Some(seed) = s.seed {
            options["seed"] = json!(seed);
        }
        let body = json!({
            "model": self.cfg.model,
            "messages": request.messages,
            "stream": true,
            "options": options,
        });
        let resp = with_auth(self.http.post(self.url("/api/chat")), &self.cfg)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &self.cfg).await);
        }
        expect_content_type(&resp, &["json"])?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let model = self.cfg.model.clone();
        let key = self.cfg.api_key.clone();
        tokio::spawn(async move {
            let mut p = Progress::new(started);
            let lines = Lines::new(resp);
            if let Err(e) = read_chat(lines, &tx, &mut p, &model, prompt_estimate).await {
                let _ = tx.send(Err(scrubbed(e, key.as_deref()))).await;
            }
        });
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        let (healthy, detail) = match self.models().await {
            Ok(models) if models.iter().any(|m| same_model(m, &self.cfg.model)) => {
                (true, format!("ollama serves {}", self.cfg.model))
            }
            Ok(_) => (
                false,
                format!(
                    "ollama is up but has no model {}: run `mongars models pull`",
                    self.cfg.model
                ),
            ),
            Err(e) => (false, format!("ollama: {e}")),
        };
        BackendHealth {
            healthy,
            detail,
            active: 0,
            queued: 0,
        }
    }

    async fn provision(
        &self,
        force: bool,
        progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        let models = self.models().await?;
        if !force && models.iter().any(|m| same_model(m, &self.cfg.model)) {
            return Ok(ProvisionOutcome::Present);
        }
        self.pull(progress).await?;
        Ok(ProvisionOutcome::Pulled)
    }
}

/// Forward the chat lines until `done`; an error ends the stream.
async fn read_chat(
    mut lines: Lines,
    tx: &Sender,
    p: &mut Progress,
    model: &str,
    prompt_estimate: u32,
) -> Result<(), LlmError> {
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tx.closed() => return Ok(()),
        };
        let Some(line) = line else {
            return Err(LlmError::Malformed("stream ended before done".into()));
        };
        if line.trim().is_empty() {
            continue;
        }
        let chunk: ChatLine = serde_json::from_str(&line)
            .map_err(|e| LlmError::Malformed(format!("bad chat line: {e}")))?;
        if let Some(error) = chunk.error {
            return Err(LlmError::Failed(error));
        }
        let text = chunk.message.map(|m| m.content).unwrap_or_default();
        if !p.send(tx, text).await {
            return Ok(());
        }
        if chunk.done {
            let usage = p.usage(
                model,
                chunk.prompt_eval_count.unwrap_or(prompt_estimate),
                chunk.eval_count,
                finish_reason(chunk.done_reason.as_deref()),
            );
            let _ = tx.send(Ok(GenerationEvent::Done(usage))).await;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_model;

    #[test]
    fn model_names_default_to_latest() {
        assert!(same_model("llama3.2:latest", "llama3.2"));
        assert!(same_model("llama3.2:1b", "llama3.2:1b"));
        assert!(!same_model("llama3.2:3b", "llama3.2:1b"));
    }
}
