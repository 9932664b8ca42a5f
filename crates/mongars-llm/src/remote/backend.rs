//! The skeleton every remote backend runs on. [`RemoteBackend`] owns the
//! connection (settings, HTTP client) and does what all protocols do alike:
//! check the URLs, send the request, refuse a wrong status or content type,
//! read the answer line by line (or whole), forward the text, fill in the
//! usage at the end, scrub errors and report health. A [`Protocol`] supplies
//! what differs.

use super::RemoteConfig;
use super::lines::Lines;
use super::wire::{
    client, expect_content_type, finish_reason, join, list_names, read_text, scrubbed,
    status_error, transport, upstream_message, with_auth,
};
use async_trait::async_trait;
use mongars_core::domain::{
    ChatMessage, GenerationEvent, GenerationRequest, GenerationUsage, ModelRole,
};
use mongars_core::ports::{
    BackendHealth, GenerationStream, LlmBackend, LlmError, ProgressSink, ProvisionOutcome,
    estimate_prompt_tokens,
};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest whole (non-streamed) answer read.
const MAX_WHOLE_BODY: usize = 16 << 20;

/// How the answer to a chat request is framed.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// A stream of lines (NDJSON or server-sent events) of one of these
    /// content types (substrings).
    Lines(&'static [&'static str]),
    /// One JSON document, read whole and given to the reader as one line.
    Whole,
}

/// The end of a reply as the server reported it; what it leaves out is
/// filled in from what was seen (text pieces, the configured model, an
/// estimate of the prompt).
#[derive(Debug, Default)]
pub struct Ending {
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    /// The model the server says answered, when it says.
    pub model: Option<String>,
}

/// Reads the answer to one request, line by line.
pub trait Reader: Send + 'static {
    /// Read one non-blank line: push the text it carries onto `text`, and
    /// return the ending once the server says the reply is complete.
    fn read(&mut self, line: &str, text: &mut Vec<String>) -> Result<Option<Ending>, LlmError>;

    /// What went wrong when the body ended before an ending.
    fn unfinished(&self) -> &'static str {
        "stream ended before done"
    }
}

/// What one kind of server wants and answers.
#[async_trait]
pub trait Protocol: Send + Sync + 'static {
    type Reader: Reader;
    /// Short name in messages: `ollama`, `openai`, `ray`.
    const KIND: &'static str;

    /// Refuse URL lists the protocol cannot use (by default: exactly one).
    fn check_urls(urls: &[String]) -> Result<(), LlmError> {
        if urls.len() == 1 {
            Ok(())
        } else {
            Err(LlmError::Unavailable(format!(
                "{} takes exactly one url",
                Self::KIND
            )))
        }
    }

    /// The body of a chat request.
    fn body(&self, cfg: &RemoteConfig, request: &GenerationRequest) -> Value;

    /// Send `body`; a success response, or why there is none.
    async fn send(&self, conn: &Conn, body: &Value) -> Result<reqwest::Response, LlmError>;

    fn framing(&self) -> Framing;

    /// A reader for one answer.
    fn reader(&self) -> Self::Reader;

    /// `Ok(detail)` when the server serves the model, `Err(detail)` when not.
    async fn health(&self, conn: &Conn) -> Result<String, String>;

    /// Make the model available; by default, it is there when healthy.
    async fn provision(
        &self,
        conn: &Conn,
        _force: bool,
        _progress: ProgressSink,
    ) -> Result<ProvisionOutcome, LlmError> {
        match self.health(conn).await {
            Ok(_) => Ok(ProvisionOutcome::Present),
            Err(detail) => Err(LlmError::Unavailable(detail)),
        }
    }

    /// Told about every failure of a reply (for the protocol's metrics).
    fn failed(&self, _error: &LlmError) {}
}

/// Settings and client of one remote backend, as its protocol sees them.
pub struct Conn {
    cfg: RemoteConfig,
    http: reqwest::Client,
}

impl Conn {
    pub fn cfg(&self) -> &RemoteConfig {
        &self.cfg
    }

    /// `path` on the (first) URL, without doubling `/v1`.
    pub(crate) fn url(&self, path: &str) -> String {
        join(&self.cfg.urls[0], path)
    }

    /// A request to `url` with the key, if any.
    pub(crate) fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        with_auth(self.http.request(method, url), &self.cfg)
    }

    /// `POST` JSON to `path`: the response when its status is a success.
    pub(crate) async fn post_json(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<reqwest::Response, LlmError> {
        let resp = self
            .request(reqwest::Method::POST, &self.url(path))
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(status_error(resp, &self.cfg).await)
        }
    }

    /// The names of a model listing at `path` (see [`list_names`]).
    pub(crate) async fn list_names(
        &self,
        path: &str,
        list_key: &str,
        name_keys: &[&str],
    ) -> Result<Vec<String>, LlmError> {
        list_names(&self.http, &self.cfg, &self.url(path), list_key, name_keys).await
    }

    /// A server's words about a failure, safe to keep.
    pub(crate) fn upstream(&self, text: &str) -> String {
        upstream_message(text, &self.cfg)
    }
}

/// A backend reached over HTTP, speaking protocol `P`.
pub struct RemoteBackend<P> {
    conn: Arc<Conn>,
    protocol: Arc<P>,
}

impl<P: Protocol> RemoteBackend<P> {
    pub fn new(cfg: RemoteConfig, protocol: P) -> Result<Self, LlmError> {
        P::check_urls(&cfg.urls)?;
        let http = client(&cfg)?;
        Ok(Self {
            conn: Arc::new(Conn { cfg, http }),
            protocol: Arc::new(protocol),
        })
    }

    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    fn scrub(&self, e: LlmError) -> LlmError {
        self.protocol.failed(&e);
        scrubbed(e, self.conn.cfg.api_key.as_deref())
    }
}

#[async_trait]
impl<P: Protocol> LlmBackend for RemoteBackend<P> {
    fn name(&self) -> &str {
        &self.conn.cfg.name
    }

    fn model(&self) -> &str {
        &self.conn.cfg.model
    }

    fn context_window(&self) -> usize {
        self.conn.cfg.context_tokens
    }

    async fn count_tokens(
        &self,
        _role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        Ok(prompts.iter().map(|p| estimate_prompt_tokens(p)).collect())
    }

    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        let mut progress = Progress::new(Instant::now(), &self.conn.cfg.model, &request);
        let body = self.protocol.body(&self.conn.cfg, &request);
        let resp = self.protocol.send(&self.conn, &body).await?;
        let mut reader = self.protocol.reader();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        match self.protocol.framing() {
            Framing::Lines(types) => {
                expect_content_type(&resp, types).map_err(|e| self.scrub(e))?;
                let protocol = self.protocol.clone();
                let key = self.conn.cfg.api_key.clone();
                tokio::spawn(async move {
                    let lines = Lines::new(resp);
                    if let Err(e) = pump(lines, &mut reader, &tx, &mut progress).await {
                        protocol.failed(&e);
                        let _ = tx.send(Err(scrubbed(e, key.as_deref()))).await;
                    }
                });
            }
            Framing::Whole => {
                let whole = read_text(resp, MAX_WHOLE_BODY)
                    .await
                    .map_err(|e| self.scrub(e))?;
                let mut text = Vec::new();
                let ending = reader
                    .read(&whole, &mut text)
                    .and_then(|end| {
                        end.ok_or_else(|| LlmError::Malformed(reader.unfinished().into()))
                    })
                    .map_err(|e| self.scrub(e))?;
                tokio::spawn(async move {
                    for piece in text {
                        if !progress.send(&tx, piece).await {
                            return;
                        }
                    }
                    let _ = tx
                        .send(Ok(GenerationEvent::Done(progress.usage(ending))))
                        .await;
                });
            }
        }
        Ok(rx)
    }

    async fn health(&self) -> BackendHealth {
        let (healthy, detail) = match self.protocol.health(&self.conn).await {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
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
        self.protocol.provision(&self.conn, force, progress).await
    }
}

type Sender = tokio::sync::mpsc::Sender<Result<GenerationEvent, LlmError>>;

/// Forward the text of each line until the reader sees the ending; stop
/// quietly when the consumer goes away.
async fn pump<R: Reader>(
    mut lines: Lines,
    reader: &mut R,
    tx: &Sender,
    progress: &mut Progress,
) -> Result<(), LlmError> {
    let mut text = Vec::new();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = tx.closed() => return Ok(()),
        };
        let Some(line) = line else {
            return Err(LlmError::Malformed(reader.unfinished().into()));
        };
        if line.trim().is_empty() {
            continue;
        }
        let ending = reader.read(&line, &mut text)?;
        for piece in text.drain(..) {
            if !progress.send(tx, piece).await {
                return Ok(());
            }
        }
        if let Some(ending) = ending {
            let _ = tx
                .send(Ok(GenerationEvent::Done(progress.usage(ending))))
                .await;
            return Ok(());
        }
    }
}

/// What a reply has shown so far, to fill in the usage at the end.
struct Progress {
    started: Instant,
    first_token: Option<Duration>,
    deltas: u32,
    model: String,
    prompt_estimate: u32,
}

impl Progress {
    fn new(started: Instant, model: &str, request: &GenerationRequest) -> Self {
        Self {
            started,
            first_token: None,
            deltas: 0,
            model: model.to_string(),
            prompt_estimate: estimate_prompt_tokens(&request.messages) as u32,
        }
    }

    /// Send one piece of text; `false` when the consumer went away.
    async fn send(&mut self, tx: &Sender, text: String) -> bool {
        if text.is_empty() {
            return true;
        }
        self.first_token
            .get_or_insert_with(|| self.started.elapsed());
        self.deltas += 1;
        tx.send(Ok(GenerationEvent::Delta(text))).await.is_ok()
    }

    fn usage(&self, ending: Ending) -> GenerationUsage {
        let total = self.started.elapsed();
        GenerationUsage {
            model: ending.model.unwrap_or_else(|| self.model.clone()),
            prompt_tokens: ending.prompt_tokens.unwrap_or(self.prompt_estimate),
            completion_tokens: ending.completion_tokens.unwrap_or(self.deltas),
            finish_reason: finish_reason(ending.finish_reason.as_deref()),
            mean_logprob: None,
            time_to_first_token: self.first_token.unwrap_or(total),
            queued: Duration::ZERO,
            total,
        }
    }
}
