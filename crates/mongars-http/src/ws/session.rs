//! One socket, from `ws.connected` to its close.
//!
//! Everything the server sends goes through the socket's bounded queue: bus
//! events, acks and pings. The session writes the queue to the socket; when
//! the queue overflows (a client that does not read), the hub cuts the socket
//! off and the session closes it with 1013. A client silent for
//! `pong_timeout` is closed with 1011. A frame over the size limit closes
//! the socket with 1009, text that is not UTF-8 with 1007.
//!
//! Revocation: when the user's account is disabled or their password
//! changes, the hub (told by the bus, on every replica) cuts the socket off
//! and the session closes it with 1008. The account is also checked again
//! before every `chat.send` and at every ping, so a revocation the bus
//! could not carry (a change made by the CLI, Redis down) still closes the
//! socket, and no frame after it is acted on. Chats sent over the socket run
//! as tasks of the session and stop when it ends.

use super::frames::{self, ClientFrame};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use mongars_core::CoreError;
use mongars_core::auth::Principal;
use mongars_core::conversation::ChatRequest;
use mongars_core::realtime::{Cutoff, Outbox, Subscription};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

/// Longest wait to write one frame, or the close frame, to a socket.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest wait for a client's close after the server closed.
const LINGER: Duration = Duration::from_secs(2);

pub struct Session {
    state: AppState,
    who: Principal,
    origin: Option<String>,
    sub: Subscription,
    chats: JoinSet<()>,
}

enum Next {
    Continue,
    /// Check that the account may still act, then go on or close.
    Recheck,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The client closed or the connection broke.
    Gone(&'static str),
}

impl Session {
    pub fn new(state: AppState, who: Principal, origin: Option<String>, sub: Subscription) -> Self {
        Self {
            state,
            who,
            origin,
            sub,
            chats: JoinSet::new(),
        }
    }

    pub async fn run(mut self, mut socket: WebSocket) {
        let ws = self.state.metrics.ws.clone();
        ws.open.inc();
        let reason = match self.greet(&mut socket).await {
            Ok(()) => self.serve(&mut socket).await,
            Err(()) => "error",
        };
        ws.open.dec();
        ws.closed.with_label_values(&[reason]).inc();
        tracing::debug!(user_id = self.who.id, reason, "socket closed");
        self.chats.abort_all();
    }

    /// `ws.connected`, then `history.snapshot`, written before any event.
    async fn greet(&self, socket: &mut WebSocket) -> Result<(), ()> {
        let name = &self.who.username;
        let connected = frames::server("ws.connected", name, json!({"origin": self.origin}));
        self.write(socket, connected.into()).await?;
        let limit = self.state.realtime.options().snapshot_items;
        let items = match self.state.conversation.history(self.who.id, limit).await {
            Ok(turns) => turns
                .iter()
                .filter_map(|t| {
                    let response = t.response.as_ref()?;
                    Some(json!({
                        "query": t.query,
                        "response": response,
                        "timestamp": t.created_at,
                        "turn_id": t.id,
                    }))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "history snapshot unavailable");
                Vec::new()
            }
        };
        let snapshot = frames::server("history.snapshot", name, json!({"items": items}));
        self.write(socket, snapshot.into()).await
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> &'static str {
        let options = self.state.realtime.options().clone();
        let mut ping = tokio::time::interval_at(
            Instant::now() + options.ping_interval,
            options.ping_interval,
        );
        let mut deadline = Instant::now() + options.pong_timeout;
        let outbox = self.sub.outbox();
        loop {
            let next = tokio::select! {
                biased;
                why = outbox.cut_off() => cut_off(why),
                _ = sleep_until(deadline) => Next::Close(1011, "no pong"),
                msg = socket.recv() => {
                    deadline = Instant::now() + options.pong_timeout;
                    self.on_message(msg, &outbox)
                }
                frame = self.sub.rx.recv() => match frame {
                    Some(frame) => self.write_or_cut(socket, frame, &outbox).await,
                    None => Next::Close(1011, "event queue closed"),
                },
                _ = ping.tick() => {
                    outbox.push(frames::ping());
                    Next::Recheck
                }
                Some(_) = self.chats.join_next(), if !self.chats.is_empty() => Next::Continue,
            };
            let next = match next {
                Next::Recheck => self.recheck().await,
                other => other,
            };
            match next {
                Next::Continue | Next::Recheck => {}
                Next::Gone(reason) => return reason,
                Next::Close(code, reason) => {
                    if code == 1000 || code == 1008 {
                        // Say everything already queued first: the close's
                        // ack, or the refusal of a frame after revocation.
                        while let Ok(frame) = self.sub.rx.try_recv() {
                            if self.write(socket, frame).await.is_err() {
                                return "error";
                            }
                        }
                    }
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = tokio::time::timeout(
                        WRITE_DEADLINE,
                        socket.send(Message::Close(Some(frame))),
                    )
                    .await;
                    if matches!(code, 1002 | 1007 | 1009) {
                        // Unread input may remain (the rest of a frame too
                        // large): read for the client's close before going,
                        // or closing could reset the connection under it.
                        linger(socket).await;
                    }
                    return match code {
                        1013 => "slow_consumer",
                        1011 => "no_pong",
                        1008 => "revoked",
                        1009 => "too_big",
                        1007 => "bad_text",
                        _ => "client",
                    };
                }
            }
        }
    }

    fn on_message(&mut self, msg: Option<Result<Message, axum::Error>>, outbox: &Outbox) -> Next {
        if outbox.revoked() {
            return Next::Close(1008, "access revoked");
        }
        let text = match msg {
            None => return Next::Gone("error"),
            Some(Err(e)) => return read_error(e),
            Some(Ok(Message::Close(_))) => return Next::Gone("client"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Next::Continue,
            Some(Ok(Message::Binary(_))) => {
                outbox.push(frames::ack(None, Some("invalid_json")));
                return Next::Continue;
            }
            Some(Ok(Message::Text(text))) => text,
        };
        match frames::parse(text.as_str()) {
            Err(refused) => {
                outbox.push(frames::ack(refused.id.as_deref(), Some(refused.detail)));
            }
            Ok(ClientFrame::Close { id }) => {
                outbox.push(frames::ack(Some(&id), None));
                return Next::Close(1000, "closed by client");
            }
            Ok(ClientFrame::Pong { id } | ClientFrame::Ping { id } | ClientFrame::Other { id }) => {
                outbox.push(frames::ack(Some(&id), None));
            }
            Ok(ClientFrame::Chat {
                id,
                message,
                session_id,
            }) => self.start_chat(
                id,
                ChatRequest {
                    message,
                    session_id,
                },
                outbox.clone(),
            ),
        }
        Next::Continue
    }

    /// Whether the account may still act; closes the socket (1008) if not.
    async fn recheck(&self) -> Next {
        match self.state.auth.still_valid(&self.who).await {
            Ok(true) => Next::Continue,
            Ok(false) => {
                tracing::info!(user_id = self.who.id, "socket closed: access revoked");
                Next::Close(1008, "access revoked")
            }
            Err(e) => {
                // Cannot tell now (database busy): the next check decides.
                tracing::warn!(error = %e, "could not recheck a socket's account");
                Next::Continue
            }
        }
    }

    /// Run a turn for this socket's user. Its chunks and result reach every
    /// socket of the user through the bus; this socket also gets the ack.
    /// The account is checked first: a revoked one gets an error ack and
    /// its socket closes.
    fn start_chat(&mut self, id: String, request: ChatRequest, outbox: Outbox) {
        let conversation = self.state.conversation.clone();
        let auth = self.state.auth.clone();
        let who = self.who.clone();
        self.chats.spawn(async move {
            match auth.still_valid(&who).await {
                Ok(true) => {}
                Ok(false) => {
                    outbox.push(frames::ack(Some(&id), Some(CoreError::InvalidToken.code())));
                    outbox.revoke();
                    return;
                }
                Err(e) => {
                    outbox.push(frames::ack(Some(&id), Some(e.code())));
                    return;
                }
            }
            match conversation.chat_stream(&who, request).await {
                Ok(mut stream) => {
                    outbox.push(frames::ack(Some(&id), None));
                    // Keep the stream open until the reply ends; the session
                    // ending drops it, which stops generation.
                    while stream.recv().await.is_some() {}
                }
                Err(e) => {
                    outbox.push(frames::ack(Some(&id), Some(e.code())));
                }
            }
        });
    }

    /// Write a queued frame, unless the socket is cut off meanwhile.
    async fn write_or_cut(&self, socket: &mut WebSocket, frame: Arc<str>, outbox: &Outbox) -> Next {
        tokio::select! {
            biased;
            why = outbox.cut_off() => cut_off(why),
            r = self.write(socket, frame) => match r {
                Ok(()) => Next::Continue,
                Err(()) => Next::Gone("error"),
            },
        }
    }

    async fn write(&self, socket: &mut WebSocket, frame: Arc<str>) -> Result<(), ()> {
        let send = socket.send(Message::Text(frame.as_ref().into()));
        match tokio::time::timeout(WRITE_DEADLINE, send).await {
            Ok(Ok(())) => {
                self.state.metrics.ws.frames_sent.inc();
                Ok(())
            }
            _ => Err(()),
        }
    }
}

fn cut_off(why: Cutoff) -> Next {
    match why {
        Cutoff::Overflow => Next::Close(1013, "too slow: outbound queue full"),
        Cutoff::Revoked => Next::Close(1008, "access revoked"),
    }
}

/// A read that failed: a frame over the limit (1009) or text that is not
/// UTF-8 (1007) is answered with its close code; anything else means the
/// connection is gone.
fn read_error(e: axum::Error) -> Next {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Capacity(_)) => Next::Close(1009, "frame too large"),
        Some(tungstenite::Error::Utf8(_)) => Next::Close(1007, "text is not valid UTF-8"),
        Some(tungstenite::Error::Protocol(_)) => Next::Close(1002, "protocol error"),
        _ => Next::Gone("error"),
    }
}

/// After closing on the server's initiative, read briefly for the client's
/// close so that the close frame is not lost to a reset of the connection.
async fn linger(socket: &mut WebSocket) {
    let drain = async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
