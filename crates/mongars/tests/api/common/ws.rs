//! A WebSocket client for tests: tickets, handshakes, and frames read with
//! deadlines.

use super::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Stream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Socket {
    pub inner: Stream,
}

/// How a handshake went: a socket, or the HTTP status it was refused with.
pub type Handshake = Result<Socket, u16>;

impl TestApp {
    pub async fn ticket(&self, token: &str) -> String {
        let resp = self
            .post_json("/api/v1/auth/ws/ticket", json!({}), Some(token))
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["ticket"].as_str().unwrap().to_string()
    }

    pub async fn open(
        &self,
        ticket: &str,
        origin: Option<&str>,
        bearer: Option<&str>,
    ) -> Handshake {
        let url = format!("ws://{}/ws/chat/?t={ticket}", self.addr);
        let mut req = url.into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        if let Some(b) = bearer {
            let value = format!("Bearer {b}");
            req.headers_mut()
                .insert("authorization", value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((inner, _)) => Ok(Socket { inner }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(e) => panic!("handshake failed: {e}"),
        }
    }

    /// A fresh ticket for `token` and a socket from this server's own page.
    pub async fn socket(&self, token: &str) -> Socket {
        let ticket = self.ticket(token).await;
        let origin = format!("http://{}", self.addr);
        self.open(&ticket, Some(&origin), None)
            .await
            .expect("socket opens")
    }
}

impl Socket {
    /// The next text frame as JSON (pings included), or `None` on close.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(within, self.inner.next())
                .await
                .expect("a frame within the deadline")?;
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("socket error: {e}");
                    return None;
                }
            };
            match msg {
                Message::Text(t) => return Some(serde_json::from_str(t.as_str()).unwrap()),
                Message::Close(f) => {
                    eprintln!("closed: {f:?}");
                    return None;
                }
                _ => {}
            }
        }
    }

    /// Frames until one of `kind` (pings skipped), which is returned.
    pub async fn until(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("closed while waiting for {kind}"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.inner.send(Message::text(text)).await.unwrap();
    }

    /// Read until the server closes; its close code.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .expect("closed within the deadline");
            match msg {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}
