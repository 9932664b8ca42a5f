//! The answer to a connection past the cap: a complete 503 in the API's
//! error shape with `Retry-After`.
//!
//! The request's head is read first (briefly: an HTTP client may not take
//! an answer that comes before its request), and closing waits a moment for
//! the client's own close: closing a socket that still holds unread input
//! makes the kernel reset the connection, which can destroy the answer
//! before the client reads it. A client that stays silent is not waited
//! for: a flood of stalled clients past the cap must not hold descriptors
//! either.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: &str =
    r#"{"detail":"The server is at its connection limit; try again shortly","code":"server.busy"}"#;
/// Longest a refused connection is kept in all.
const DEADLINE: Duration = Duration::from_secs(2);
/// A refused client silent for this long is not waited for any more.
const SILENCE: Duration = Duration::from_millis(100);
/// Longest wait for the request's head before answering anyway.
const HEAD_WAIT: Duration = Duration::from_millis(500);
/// Most bytes of a refused request read.
const MAX_READ: usize = 64 * 1024;

fn answer() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    )
}

/// Read the request's head, answer, then read until the client closes or
/// falls silent.
pub async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(DEADLINE, async {
        let mut seen = Vec::new();
        let mut sink = [0u8; 4096];
        let head = async {
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < MAX_READ {
                match tcp.read(&mut sink).await {
                    Ok(n) if n > 0 => seen.extend_from_slice(&sink[..n]),
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(HEAD_WAIT, head).await;
        if tcp.write_all(answer().as_bytes()).await.is_err() {
            return;
        }
        let _ = tcp.shutdown().await;
        let mut left = MAX_READ;
        while left > 0 {
            match tokio::time::timeout(SILENCE, tcp.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                _ => break,
            }
        }
    })
    .await;
}

/// Answer without waiting at all (when too many refusals are in progress):
/// the few bytes fit an empty send buffer; input already there is dropped.
pub fn refuse_now(tcp: TcpStream) {
    let mut sink = [0u8; 4096];
    while matches!(tcp.try_read(&mut sink), Ok(n) if n > 0) {}
    let _ = tcp.try_write(answer().as_bytes());
}
