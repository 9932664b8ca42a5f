//! One socket, from `ws.connected` to its close.
//!
//! Everything the server sends goes through the socket's bounded queue: bus
//! events, acks and pings. The session writes the queue to the socket; when
//! the queue overflows (a client that does not read), the hub cuts the socket
//! off and the session closes it with 1013. A client silent for
//! `pong_timeout` is closed with 1011. Chats sent over the socket run as
//! tasks of the session and stop when it ends.

use super::frames::{self, ClientFrame};
use crate::state::AppState;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use mongars_core::auth::Principal;
use mongars_core::conversation::ChatRequest;
use mongars_core::realtime::{Outbox, Subscription};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

/// Longest wait to write one frame, or the close frame, to a socket.
const WRITE_DEADLINE: Duration = Duration::from_secs(10);

pub struct Session {
    state: AppState,
    who: Principal,
    origin: Option<String>,
    sub: Subscription,
    chats: JoinSet<()>,
}

enum Next {
    Continue,
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
                _ = outbox.cut_off() => Next::Close(1013, "too slow: outbound queue full"),
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
                    Next::Continue
                }
                Some(_) = self.chats.join_next(), if !self.chats.is_empty() => Next::Continue,
            };
            match next {
                Next::Continue => {}
                Next::Gone(reason) => return reason,
                Next::Close(code, reason) => {
                    if code == 1000 {
                        // Say everything already queued (the close's ack) first.
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
                    return match code {
                        1013 => "slow_consumer",
                        1011 => "no_pong",
                        _ => "client",
                    };
                }
            }
        }
    }

    fn on_message(&mut self, msg: Option<Result<Message, axum::Error>>, outbox: &Outbox) -> Next {
        let text = match msg {
            None | Some(Err(_)) => return Next::Gone("error"),
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

    /// Run a turn for this socket's user. Its chunks and result reach every
    /// socket of the user through the bus; this socket also gets the ack.
    fn start_chat(&mut self, id: String, request: ChatRequest, outbox: Outbox) {
        let conversation = self.state.conversation.clone();
        let who = self.who.clone();
        self.chats.spawn(async move {
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
            _ = outbox.cut_off() => Next::Close(1013, "too slow: outbound queue full"),
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
