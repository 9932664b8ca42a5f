//! Calls to one peer over the mutual-TLS link: a generation (as a backend
//! the router guards like any other) and the load push.

use crate::status::PeerStatus;
use crate::wire::{WireEvent, WireRequest};
use async_trait::async_trait;
use mongars_core::domain::{ChatMessage, GenerationRequest, ModelRole, NodeLoad};
use mongars_core::ports::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, estimate_prompt_tokens,
};
use mongars_llm::remote::{Lines, transport};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Path of the generation call on a peer listener.
pub const GENERATE_PATH: &str = "/peer/v1/generate";
/// Path of the load exchange on a peer listener.
pub const LOAD_PATH: &str = "/peer/v1/load";

/// Largest context window assumed for a peer (it trims nothing itself:
/// the owning node already fitted the prompt to its own window).
const PEER_CONTEXT: usize = 1 << 20;

pub struct PeerClient {
    /// `peer:<url>`: the backend label in metrics.
    name: String,
    url: String,
    http: reqwest::Client,
    pub status: Arc<PeerStatus>,
    /// Generations sent to it that are still streaming.
    inflight: Arc<AtomicUsize>,
    /// Generations it accepted from this node.
    handed_off: Arc<std::sync::atomic::AtomicU64>,
    handoffs: mongars_metrics::IntCounter,
}

impl PeerClient {
    pub fn new(
        url: &str,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        status: Arc<PeerStatus>,
        handed_off: Arc<std::sync::atomic::AtomicU64>,
        handoffs: mongars_metrics::IntCounter,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            // The certificate the answer came with, to bind its report to it.
            .tls_info(true)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("peer client: {e}"))?;
        Ok(Self {
            name: format!("peer:{url}"),
            url: url.to_string(),
            http,
            status,
            inflight: Arc::new(AtomicUsize::new(0)),
            handed_off,
            handoffs,
        })
    }

    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::SeqCst)
    }

    /// Send this node's load; the answer is the peer's own.
    pub async fn push_load(&self, load: &NodeLoad, timeout: Duration) -> Result<NodeLoad, String> {
        let resp = self
            .http
            .post(format!("{}{LOAD_PATH}", self.url))
            .timeout(timeout)
            .json(load)
            .send()
            .await
            .map_err(|e| transport(e).to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let key = resp
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|t| t.peer_certificate())
            .and_then(crate::identity::fingerprint);
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        let load = crate::wire::parse_load(&body)?;
        // A report is its sender's own: the id in it must be the key of the
        // certificate it came with (what a CA-trusted peer says of itself
        // is checked, not believed).
        if key.as_deref() != Some(load.scheduler_id.as_str()) {
            return Err("the answer's scheduler_id is not its certificate's key".into());
        }
        Ok(load)
    }
}

/// Decrements the in-flight count when the stream's task ends.
struct Inflight(Arc<AtomicUsize>);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl LlmBackend for PeerClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn model(&self) -> &str {
        "peer"
    }

    fn context_window(&self) -> usize {
        PEER_CONTEXT
    }

    async fn count_tokens(
        &self,
        _role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        Ok(prompts.iter().map(|p| estimate_prompt_tokens(p)).collect())
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let guard = Inflight(self.inflight.clone());
        let resp = self
            .http
            .post(format!("{}{GENERATE_PATH}", self.url))
            .json(&WireRequest::from_request(&request))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status().as_u16();
        if status == 503 || status == 429 {
            return Err(LlmError::Busy {
                status,
                after_ms: 1000,
            });
        }
        if status != 200 {
            let message = resp.text().await.unwrap_or_default();
            let message: String = message.chars().take(300).collect();
            return Err(if status >= 500 {
                LlmError::Unavailable(format!("peer answered {status}: {message}"))
            } else {
                LlmError::Rejected { status, message }
            });
        }
        self.handed_off.fetch_add(1, Ordering::Relaxed);
        self.handoffs.inc();
        let mut lines = Lines::new(resp);
        // The first line is awaited here, so that a peer that dies before
        // its first token fails this call and the router tries the next.
        let first = match lines.next_line().await? {
            Some(l) => WireEvent::parse(l.as_bytes())?,
            None => {
                return Err(LlmError::Transport(
                    "peer closed the answer before its first token".into(),
                ));
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let _guard = guard;
            let mut done = matches!(first, mongars_core::domain::GenerationEvent::Done(_));
            if tx.send(Ok(first)).await.is_err() || done {
                return;
            }
            loop {
                let event = match lines.next_line().await {
                    Ok(Some(line)) if line.is_empty() => continue,
                    Ok(Some(line)) => WireEvent::parse(line.as_bytes()),
                    Ok(None) if done => return,
                    Ok(None) => Err(LlmError::Transport(
                        "peer connection closed mid-reply".into(),
                    )),
                    Err(e) => Err(e),
                };
                let stop = event.is_err();
                done |= matches!(event, Ok(mongars_core::domain::GenerationEvent::Done(_)));
                if tx.send(event).await.is_err() || stop || done {
                    return;
                }
            }
        });
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        self.status.health()
    }
}
