//! OpenAI-compatible servers (vLLM, llama.cpp server, ...):
//! `POST /v1/chat/completions` streamed as server-sent events, ending with
//! `data: [DONE]` (or, with `stream = false`, answered as one JSON
//! document), and `GET /v1/models` for health and presence of the model.

use super::wire::add_stop_and_seed;
use super::{Conn, Ending, Framing, Protocol, Reader, RemoteBackend, RemoteConfig};
use async_trait::async_trait;
use mongars_core::domain::GenerationRequest;
use mongars_core::ports::LlmError;
use serde::Deserialize;
use serde_json::{Value, json};

/// An OpenAI-compatible backend.
pub type OpenAiBackend = RemoteBackend<OpenAi>;

/// The OpenAI chat-completions protocol.
pub struct OpenAi {
    /// Ask for server-sent events (the default) or for one whole answer.
    pub stream: bool,
}

impl OpenAi {
    /// Ids of the models the server lists.
    pub async fn models(conn: &Conn) -> Result<Vec<String>, LlmError> {
        conn.list_names("/v1/models", "data", &["id"]).await
    }

    fn serves(conn: &Conn, models: &[String]) -> bool {
        let model = &conn.cfg().model;
        model.is_empty() || models.contains(model)
    }
}

#[async_trait]
impl Protocol for OpenAi {
    type Reader = Events;
    const KIND: &'static str = "openai";

    fn body(&self, cfg: &RemoteConfig, request: &GenerationRequest) -> Value {
        let s = &request.sampling;
        let mut body = json!({
            "model": cfg.model,
            "messages": request.messages,
            "stream": self.stream,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        });
        if self.stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        add_stop_and_seed(&mut body, s);
        body
    }

    async fn send(&self, conn: &Conn, body: &Value) -> Result<reqwest::Response, LlmError> {
        conn.post_json("/v1/chat/completions", body).await
    }

    fn framing(&self) -> Framing {
        if self.stream {
            Framing::Lines(&["text/event-stream"])
        } else {
            Framing::Whole
        }
    }

    fn reader(&self) -> Events {
        Events {
            whole: !self.stream,
            ..Events::default()
        }
    }

    async fn health(&self, conn: &Conn) -> Result<String, String> {
        let model = &conn.cfg().model;
        match Self::models(conn).await {
            Ok(models) if Self::serves(conn, &models) => Ok(format!("serves {model}")),
            Ok(models) => Err(format!(
                "the server lists {} but not {model} (OpenAI-compatible servers load their models themselves)",
                models.join(", ")
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    /// A streamed event's piece.
    delta: Option<Delta>,
    /// A whole answer's message.
    message: Option<Delta>,
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

/// Reads `data:` events until `[DONE]`, remembering the finish reason,
/// the usage and the model name as they pass; or, for a whole answer, the
/// one document.
#[derive(Default)]
pub struct Events {
    /// The answer is one JSON document, not events.
    whole: bool,
    finish: Option<String>,
    usage: Option<Usage>,
    model: Option<String>,
}

impl Reader for Events {
    fn read(&mut self, line: &str, text: &mut Vec<String>) -> Result<Option<Ending>, LlmError> {
        if self.whole {
            self.document(line, text)?;
            return Ok(Some(self.ending()));
        }
        let Some(data) = line.strip_prefix("data:") else {
            // Comments (":"), "event:" and "id:" lines.
            return Ok(None);
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(Some(self.ending()));
        }
        self.document(data, text)?;
        Ok(None)
    }

    fn unfinished(&self) -> &'static str {
        "event stream ended before [DONE]"
    }
}

impl Events {
    fn ending(&mut self) -> Ending {
        let usage = self.usage.take();
        Ending {
            prompt_tokens: usage.as_ref().and_then(|u| u.prompt_tokens),
            completion_tokens: usage.as_ref().and_then(|u| u.completion_tokens),
            finish_reason: self.finish.take(),
            model: self.model.take(),
        }
    }

    /// One event's JSON, or the whole answer: its text, and what it says of
    /// the model, the usage and the finish reason.
    fn document(&mut self, data: &str, text: &mut Vec<String>) -> Result<(), LlmError> {
        let value: Value = serde_json::from_str(data)
            .map_err(|e| LlmError::Malformed(format!("bad event JSON: {e}")))?;
        if self.model.is_none() {
            self.model = value
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_string);
        }
        let chunk: Chunk = serde_json::from_value(value)
            .map_err(|e| LlmError::Malformed(format!("unexpected event: {e}")))?;
        if let Some(e) = chunk.error {
            let msg = e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_string);
            return Err(LlmError::Failed(msg));
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        for choice in chunk.choices {
            if choice.finish_reason.is_some() {
                self.finish = choice.finish_reason;
            }
            let piece = if self.whole {
                choice.message
            } else {
                choice.delta
            };
            text.extend(piece.and_then(|d| d.content));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(lines: &[&str]) -> Result<(Vec<String>, Option<Ending>), LlmError> {
        let mut r = Events::default();
        let mut text = Vec::new();
        for line in lines {
            if let Some(end) = r.read(line, &mut text)? {
                return Ok((text, Some(end)));
            }
        }
        Ok((text, None))
    }

    #[test]
    fn events_carry_text_usage_and_the_model_until_done() {
        let (text, end) = read_all(&[
            ": keep-alive",
            r#"data: {"model":"m-1","choices":[{"delta":{"content":"Hel"}}]}"#,
            r#"data: {"choices":[{"delta":{"content":"lo"},"finish_reason":"length"}]}"#,
            r#"data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#,
            "data: [DONE]",
        ])
        .unwrap();
        assert_eq!(text, ["Hel", "lo"]);
        let end = end.unwrap();
        assert_eq!(end.model.as_deref(), Some("m-1"));
        assert_eq!(
            (end.prompt_tokens, end.completion_tokens),
            (Some(7), Some(2))
        );
        assert_eq!(end.finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn a_whole_answer_carries_its_text_usage_model_and_finish() {
        let mut r = Events {
            whole: true,
            ..Events::default()
        };
        let mut text = Vec::new();
        let end = r
            .read(
                r#"{"model":"m-2","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3}}"#,
                &mut text,
            )
            .unwrap()
            .expect("a whole answer ends at once");
        assert_eq!(text, ["Hello there"]);
        assert_eq!(end.model.as_deref(), Some("m-2"));
        assert_eq!(
            (end.prompt_tokens, end.completion_tokens),
            (Some(9), Some(3))
        );
        assert_eq!(end.finish_reason.as_deref(), Some("stop"));
        let mut r = Events {
            whole: true,
            ..Events::default()
        };
        let e = r
            .read(r#"{"error":{"message":"no such model"}}"#, &mut text)
            .unwrap_err();
        assert!(matches!(e, LlmError::Failed(m) if m == "no such model"));
    }

    #[test]
    fn an_error_event_or_bad_json_fails_the_reply() {
        let e = read_all(&[r#"data: {"error":{"message":"overloaded"}}"#]).unwrap_err();
        assert!(matches!(e, LlmError::Failed(m) if m == "overloaded"));
        let e = read_all(&["data: {nope"]).unwrap_err();
        assert!(matches!(e, LlmError::Malformed(_)));
    }
}
