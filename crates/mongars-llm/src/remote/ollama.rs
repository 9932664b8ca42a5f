//! Ollama: `POST /api/chat` streamed as NDJSON (or, with `stream = false`,
//! answered as one JSON document of the same shape), `GET /api/tags` for health
//! and presence of the model, `POST /api/pull` (NDJSON progress) to download.

use super::lines::Lines;
use super::wire::add_stop_and_seed;
use super::wire::expect_content_type;
use super::{Conn, Ending, Framing, Protocol, Reader, RemoteBackend, RemoteConfig};
use async_trait::async_trait;
use mongars_core::domain::GenerationRequest;
use mongars_core::ports::{LlmError, ProgressSink, ProvisionOutcome, PullProgress};
use serde::Deserialize;
use serde_json::{Value, json};

/// An Ollama backend.
pub type OllamaBackend = RemoteBackend<Ollama>;

/// The Ollama chat protocol.
pub struct Ollama {
    /// Ask for NDJSON lines (the default) or for one whole answer.
    pub stream: bool,
}

impl Ollama {
    /// Names of the models the server has.
    pub async fn models(conn: &Conn) -> Result<Vec<String>, LlmError> {
        conn.list_names("/api/tags", "models", &["name", "model"])
            .await
    }

    async fn has_model(conn: &Conn) -> Result<bool, LlmError> {
        let models = Self::models(conn).await?;
        Ok(models.iter().any(|m| same_model(m, &conn.cfg().model)))
    }

    async fn pull(conn: &Conn, progress: ProgressSink) -> Result<(), LlmError> {
        let model = &conn.cfg().model;
        let body = json!({ "model": model, "stream": true });
        let resp = conn.post_json("/api/pull", &body).await?;
        expect_content_type(&resp, &["json"])?;
        let mut lines = Lines::new(resp);
        while let Some(line) = lines.next_line().await? {
            if line.trim().is_empty() {
                continue;
            }
            let p: PullLine = serde_json::from_str(&line)
                .map_err(|e| LlmError::Malformed(format!("bad pull progress line: {e}")))?;
            if let Some(error) = p.error {
                let error = conn.upstream(&error);
                return Err(LlmError::Failed(format!("pull of {model}: {error}")));
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

#[async_trait]
impl Protocol for Ollama {
    type Reader = ChatLines;
    const KIND: &'static str = "ollama";

    fn body(&self, cfg: &RemoteConfig, request: &GenerationRequest) -> Value {
        let s = &request.sampling;
        let mut options = json!({
            "temperature": s.temperature,
            "top_p": s.top_p,
            "num_predict": s.max_tokens,
            "num_ctx": cfg.context_tokens,
        });
        add_stop_and_seed(&mut options, s);
        json!({
            "model": cfg.model,
            "messages": request.messages,
            "stream": self.stream,
            "options": options,
        })
    }

    async fn send(&self, conn: &Conn, body: &Value) -> Result<reqwest::Response, LlmError> {
        conn.post_json("/api/chat", body).await
    }

    fn framing(&self) -> Framing {
        if self.stream {
            Framing::Lines(&["json"])
        } else {
            // The whole answer is the last line's shape, with all the text.
            Framing::Whole
        }
    }

    fn reader(&self) -> ChatLines {
        ChatLines
    }

    async fn health(&self, conn: &Conn) -> Result<String, String> {
        let model = &conn.cfg().model;
        match Self::has_model(conn).await {
            Ok(true) => Ok(format!("ollama serves {model}")),
            Ok(false) => Err(format!(
                "ollama is up but has no model {model}: run `mongars models pull`"
            )),
            Err(e) => Err(format!("ollama: {e}")),
        }
    }

    async fn provision(
        &self,
        conn: &Conn,
        force: bool,
        progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        if !force && Self::has_model(conn).await? {
            return Ok(ProvisionOutcome::Present);
        }
        Self::pull(conn, progress).await?;
        Ok(ProvisionOutcome::Pulled)
    }
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

/// Reads chat lines until one says `done`.
pub struct ChatLines;

impl Reader for ChatLines {
    fn read(&mut self, line: &str, text: &mut Vec<String>) -> Result<Option<Ending>, LlmError> {
        let chunk: ChatLine = serde_json::from_str(line)
            .map_err(|e| LlmError::Malformed(format!("bad chat line: {e}")))?;
        if let Some(error) = chunk.error {
            return Err(LlmError::Failed(error));
        }
        text.extend(chunk.message.map(|m| m.content));
        Ok(chunk.done.then_some(Ending {
            prompt_tokens: chunk.prompt_eval_count,
            completion_tokens: chunk.eval_count,
            finish_reason: chunk.done_reason,
            model: None,
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_default_to_latest() {
        assert!(same_model("llama3.2:latest", "llama3.2"));
        assert!(same_model("llama3.2:1b", "llama3.2:1b"));
        assert!(!same_model("llama3.2:3b", "llama3.2:1b"));
    }

    #[test]
    fn chat_lines_carry_text_until_done() {
        let mut r = ChatLines;
        let mut text = Vec::new();
        let line = r#"{"message":{"content":"Hi"},"done":false}"#;
        assert!(r.read(line, &mut text).unwrap().is_none());
        let last = r#"{"message":{"content":"!"},"done":true,"done_reason":"length","prompt_eval_count":9,"eval_count":2}"#;
        let end = r.read(last, &mut text).unwrap().unwrap();
        assert_eq!(text, ["Hi", "!"]);
        assert_eq!(
            (end.prompt_tokens, end.completion_tokens),
            (Some(9), Some(2))
        );
        assert_eq!(end.finish_reason.as_deref(), Some("length"));
        let e = r
            .read(r#"{"error":"model not found"}"#, &mut text)
            .unwrap_err();
        assert!(matches!(e, LlmError::Failed(_)));
    }
}
