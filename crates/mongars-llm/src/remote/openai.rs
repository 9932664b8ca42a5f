//! OpenAI-compatible servers (vLLM, llama.cpp server, ...):
//! `POST /v1/chat/completions` streamed as server-sent events, ending with
//! `data: [DONE]`, and `GET /v1/models` for health and presence of the model.

use super::scrubbed;
use super::{
    Lines, Progress, RemoteConfig, Sender, client, finish_reason, join, list_names, status_error,
};
use super::{expect_content_type, transport, with_auth};
use async_trait::async_trait;
use mongars_core::domain::{ChatMessage, GenerationEvent, GenerationRequest};
use mongars_core::ports::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, ProgressSink, ProvisionOutcome,
    estimate_prompt_tokens,
};
use serde::Deserialize;
use serde_json::json;
use std::time::Instant;

pub struct OpenAiBackend {
    cfg: RemoteConfig,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

impl OpenAiBackend {
    pub fn new(cfg: RemoteConfig) -> Result<Self, LlmError> {
        if cfg.urls.len() != 1 {
            return Err(LlmError::Unavailable("openai takes exactly one url".into()));
        }
        Ok(Self {
            http: client(&cfg)?,
            cfg,
        })
    }

    fn url(&self, path: &str) -> String {
        join(&self.cfg.urls[0], path)
    }

    /// Ids of the models the server lists.
    pub async fn models(&self) -> Result<Vec<String>, LlmError> {
        list_names(
            &self.http,
            &self.cfg,
            &self.url("/v1/models"),
            "data",
            &["id"],
        )
        .await
    }

    fn serves(&self, models: &[String]) -> bool {
        self.cfg.model.is_empty() || models.contains(&self.cfg.model)
    }
}

#[async_trait]
impl LlmBackend for OpenAiBackend {
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
        let mut body = json!({
            "model": self.cfg.model,
            "messages": request.messages,
            "stream": true,
            "stream_options": { "include_usage": true },
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        });
        if !s.stop.is_empty() {
            body["stop"] = json!(s.stop);
        }
        if let Some(seed) = s.seed {
            body["seed"] = json!(seed);
        }
        let resp = with_auth(self.http.post(self.url("/v1/chat/completions")), &self.cfg)
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &self.cfg).await);
        }
        expect_content_type(&resp, &["text/event-stream"])?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let model = self.cfg.model.clone();
        let key = self.cfg.api_key.clone();
        tokio::spawn(async move {
            let mut p = Progress::new(started);
            let lines = Lines::new(resp);
            if let Err(e) = read_events(lines, &tx, &mut p, &model, prompt_estimate).await {
                let _ = tx.send(Err(scrubbed(e, key.as_deref()))).await;
            }
        });
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        let (healthy, detail) = match self.models().await {
            Ok(models) if self.serves(&models) => (true, format!("serves {}", self.cfg.model)),
            Ok(models) => (
                false,
                format!(
                    "the server lists {} but not {}",
                    models.join(", "),
                    self.cfg.model
                ),
            ),
            Err(e) => (false, e.to_string()),
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
        _force: bool,
        _progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        let models = self.models().await?;
        if self.serves(&models) {
            Ok(ProvisionOutcome::Present)
        } else {
            Err(LlmError::Unavailable(format!(
                "model {} is not served; OpenAI-compatible servers load models themselves",
                self.cfg.model
            )))
        }
    }
}

/// Forward `data:` events until `[DONE]`; an error ends the stream.
async fn read_events(
    mut lines: Lines,
    tx: &Sender,
    p: &mut Progress,
    model: &str,
    prompt_estimate: u32,
) -> Result<(), LlmError> {
    let mut finish: Option<String> = None;
    let mut usage: Option<Usage> = None;
    let mut model_seen: Option<String> = None;
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tx.closed() => return Ok(()),
        };
        let Some(line) = line else {
            return Err(LlmError::Malformed(
                "event stream ended before [DONE]".into(),
            ));
        };
        let Some(data) = line.strip_prefix("data:") else {
            // Blank separators, comments (":"), "event:" and "id:" lines.
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            let used = usage.unwrap_or(Usage {
                prompt_tokens: None,
                completion_tokens: None,
            });
            let name = model_seen.as_deref().unwrap_or(model);
            let done = p.usage(
                name,
                used.prompt_tokens.unwrap_or(prompt_estimate),
                used.completion_tokens,
                finish_reason(finish.as_deref()),
            );
            let _ = tx.send(Ok(GenerationEvent::Done(done))).await;
            return Ok(());
        }
        let value: serde_json::Value = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("bad event JSON: {e}")))?;
        if model_seen.is_none() {
            model_seen = value
                .get("model")
                .and_then(|m| m.as_str())
                .filter(|m| !m.is_empty())
                .map(str::to_string);
        }
        let chunk: Chunk = serde_json::from_value(value)
            .map_err(|e| LlmError::Malformed(format!("unexpected event: {e}")))?;
        if let Some(e) = chunk.error {
            let msg = e
                .get("message")
                .and_then(|m| m.as_str())
                .map_or_else(|| e.to_string(), str::to_string);
            return Err(LlmError::Failed(msg));
        }
        if chunk.usage.is_some() {
            usage = chunk.usage;
        }
        for choice in chunk.choices {
            if choice.finish_reason.is_some() {
                finish = choice.finish_reason;
            }
            let text = choice.delta.and_then(|d| d.content).unwrap_or_default();
            if !p.send(tx, text).await {
                return Ok(());
            }
        }
    }
}
