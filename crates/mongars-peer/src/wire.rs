//! What travels between peers, and its parsing at the edge. A generation
//! request carries the prompt and sampling only (no user, no history id);
//! the answer is a stream of JSON lines: `{"delta": ".."}` as text comes,
//! then one `{"done": {..}}` or `{"error": {"kind", "message"}}`.

use mongars_core::domain::{
    ChatMessage, ChatRole, FinishReason, GenerationEvent, GenerationRequest, GenerationUsage,
    ModelRole, NodeLoad, SamplingParams,
};
use mongars_core::ports::LlmError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest accepted request or answer line; a prompt is a few kB.
pub const MAX_BODY: usize = 2 * 1024 * 1024;
/// Most messages in one prompt.
const MAX_MESSAGES: usize = 512;
/// Most tokens a peer asks for in one reply.
const MAX_TOKENS: u32 = 32_768;
/// Most models a load report lists.
const MAX_MODELS: usize = 32;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSampling {
    pub temperature: f32,
    pub top_p: f32,
    pub max_tokens: u32,
    #[serde(default)]
    pub stop: Vec<String>,
    #[serde(default)]
    pub seed: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireRequest {
    pub role: String,
    pub messages: Vec<ChatMessage>,
    pub sampling: WireSampling,
}

impl WireRequest {
    pub fn from_request(r: &GenerationRequest) -> Self {
        Self {
            role: r.role.as_str().to_string(),
            messages: r.messages.clone(),
            sampling: WireSampling {
                temperature: r.sampling.temperature,
                top_p: r.sampling.top_p,
                max_tokens: r.sampling.max_tokens,
                stop: r.sampling.stop.clone(),
                seed: r.sampling.seed,
            },
        }
    }

    /// Parse a request body from a peer; the message says what is wrong.
    pub fn parse(body: &[u8]) -> Result<GenerationRequest, String> {
        let w: WireRequest = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let role = ModelRole::parse(&w.role).ok_or_else(|| format!("unknown role {:?}", w.role))?;
        if w.messages.is_empty() || w.messages.len() > MAX_MESSAGES {
            return Err(format!("between 1 and {MAX_MESSAGES} messages"));
        }
        if !w.messages.iter().any(|m| m.role == ChatRole::User) {
            return Err("no user message".into());
        }
        let s = &w.sampling;
        if !(0.0..=5.0).contains(&s.temperature) || !(0.0..=1.0).contains(&s.top_p) {
            return Err("temperature or top_p out of range".into());
        }
        if s.max_tokens == 0 || s.max_tokens > MAX_TOKENS || s.stop.len() > 16 {
            return Err("max_tokens or stop out of range".into());
        }
        Ok(GenerationRequest {
            messages: w.messages,
            sampling: SamplingParams {
                temperature: s.temperature,
                top_p: s.top_p,
                max_tokens: s.max_tokens,
                stop: w.sampling.stop,
                seed: w.sampling.seed,
            },
            role,
            // Accounts are this node's own: a peer's request has none.
            account: None,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireUsage {
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub finish_reason: String,
    #[serde(default)]
    pub mean_logprob: Option<f64>,
    pub time_to_first_token_ms: u64,
    pub queued_ms: u64,
    pub total_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireError {
    pub kind: String,
    pub message: String,
}

/// One line of a generation answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum WireEvent {
    Delta(String),
    Done(WireUsage),
    Error(WireError),
}

impl WireEvent {
    pub fn from_event(e: &Result<GenerationEvent, LlmError>) -> Self {
        match e {
            Ok(GenerationEvent::Delta(d)) => WireEvent::Delta(d.clone()),
            Ok(GenerationEvent::Done(u)) => WireEvent::Done(WireUsage {
                model: u.model.clone(),
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                finish_reason: u.finish_reason.as_str().to_string(),
                mean_logprob: u.mean_logprob,
                time_to_first_token_ms: u.time_to_first_token.as_millis() as u64,
                queued_ms: u.queued.as_millis() as u64,
                total_ms: u.total.as_millis() as u64,
            }),
            Err(e) => WireEvent::Error(WireError {
                kind: e.kind().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Parse one answer line into what the router streams on.
    pub fn parse(line: &[u8]) -> Result<GenerationEvent, LlmError> {
        let w: WireEvent = serde_json::from_slice(line)
            .map_err(|e| LlmError::Malformed(format!("peer answer line: {e}")))?;
        match w {
            WireEvent::Delta(d) => Ok(GenerationEvent::Delta(d)),
            WireEvent::Done(u) => {
                let finish_reason = match u.finish_reason.as_str() {
                    "stop" => FinishReason::Stop,
                    "length" => FinishReason::Length,
                    "cancelled" => FinishReason::Cancelled,
                    other => {
                        return Err(LlmError::Malformed(format!("peer finish reason {other:?}")));
                    }
                };
                Ok(GenerationEvent::Done(GenerationUsage {
                    model: u.model,
                    prompt_tokens: u.prompt_tokens,
                    completion_tokens: u.completion_tokens,
                    finish_reason,
                    mean_logprob: u.mean_logprob.filter(|v| v.is_finite()),
                    time_to_first_token: Duration::from_millis(u.time_to_first_token_ms),
                    queued: Duration::from_millis(u.queued_ms),
                    total: Duration::from_millis(u.total_ms),
                }))
            }
            WireEvent::Error(e) => Err(match e.kind.as_str() {
                "overloaded" => LlmError::Overloaded {
                    retry_after_secs: 1,
                },
                "prompt_too_long" => LlmError::Rejected {
                    status: 413,
                    message: e.message,
                },
                _ => LlmError::Failed(format!("peer: {}", e.message)),
            }),
        }
    }
}

/// Parse a load report from a peer.
pub fn parse_load(body: &[u8]) -> Result<NodeLoad, String> {
    let load: NodeLoad = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !load.load_factor.is_finite()
        || load.load_factor < 0.0
        || !load.tokens_per_second.is_finite()
        || load.tokens_per_second < 0.0
    {
        return Err("load_factor and tokens_per_second must be finite and not negative".into());
    }
    if load.concurrency == 0 {
        return Err("concurrency must be at least 1".into());
    }
    if load.models.len() > MAX_MODELS || load.models.iter().any(|m| m.len() > 256) {
        return Err("too many or too long model names".into());
    }
    if load.scheduler_id.len() > 128 {
        return Err("scheduler_id is too long".into());
    }
    Ok(load)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> GenerationRequest {
        GenerationRequest {
            messages: vec![
                ChatMessage::new(ChatRole::System, "be brief"),
                ChatMessage::new(ChatRole::User, "hello"),
            ],
            sampling: SamplingParams::greedy(32),
            role: ModelRole::General,
            account: Some(7),
        }
    }

    #[test]
    fn a_request_round_trips_and_bad_ones_say_why() {
        let body = serde_json::to_vec(&WireRequest::from_request(&request())).unwrap();
        let back = WireRequest::parse(&body).unwrap();
        assert_eq!(back.messages, request().messages);
        assert_eq!(back.sampling, request().sampling);
        // The account is this node's: it does not travel.
        assert!(!String::from_utf8_lossy(&body).contains("account"));
        assert_eq!(back.account, None);
        for bad in [
            &b"{"[..],
            br#"{"role":"general","messages":[],"sampling":{"temperature":0,"top_p":1,"max_tokens":5}}"#,
            br#"{"role":"poet","messages":[{"role":"user","content":"x"}],"sampling":{"temperature":0,"top_p":1,"max_tokens":5}}"#,
            br#"{"role":"general","messages":[{"role":"user","content":"x"}],"sampling":{"temperature":0,"top_p":1,"max_tokens":0}}"#,
            br#"{"role":"general","messages":[{"role":"system","content":"x"}],"sampling":{"temperature":0,"top_p":1,"max_tokens":5}}"#,
            br#"{"role":"general","messages":[{"role":"user","content":"x"}],"sampling":{"temperature":0,"top_p":1,"max_tokens":5},"user_id":3}"#,
        ] {
            assert!(WireRequest::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn answer_lines_round_trip() {
        let usage = GenerationUsage {
            model: "m".into(),
            prompt_tokens: 3,
            completion_tokens: 2,
            finish_reason: FinishReason::Length,
            mean_logprob: Some(-0.5),
            time_to_first_token: Duration::from_millis(7),
            queued: Duration::ZERO,
            total: Duration::from_millis(9),
        };
        for e in [
            Ok(GenerationEvent::Delta("hi".into())),
            Ok(GenerationEvent::Done(usage)),
        ] {
            let line = serde_json::to_vec(&WireEvent::from_event(&e)).unwrap();
            assert_eq!(WireEvent::parse(&line).unwrap(), e.unwrap());
        }
        let line = serde_json::to_vec(&WireEvent::from_event(&Err(LlmError::Overloaded {
            retry_after_secs: 3,
        })))
        .unwrap();
        assert!(matches!(
            WireEvent::parse(&line),
            Err(LlmError::Overloaded { .. })
        ));
        assert!(matches!(
            WireEvent::parse(b"{\"delta\": 3}"),
            Err(LlmError::Malformed(_))
        ));
    }

    #[test]
    fn load_reports_are_checked() {
        let ok = br#"{"scheduler_id":"ab","queue_depth":1,"active_workers":1,"concurrency":1,"load_factor":2.0,"tokens_per_second":40.5,"models":["m"]}"#;
        assert_eq!(parse_load(ok).unwrap().queue_depth, 1);
        let negative = br#"{"scheduler_id":"ab","queue_depth":1,"active_workers":1,"concurrency":1,"load_factor":-2.0,"tokens_per_second":0,"models":[]}"#;
        assert!(parse_load(negative).is_err());
        let zero = br#"{"scheduler_id":"ab","queue_depth":1,"active_workers":1,"concurrency":0,"load_factor":2.0,"tokens_per_second":0,"models":[]}"#;
        assert!(parse_load(zero).is_err());
        assert!(parse_load(b"[]").is_err());
    }
}
