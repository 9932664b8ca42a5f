//! The answer to a connection past the cap: a complete 503 in the API's
//! error shape with `Retry-After`, written without reading the request,
//! then a brief drain so that closing does not reset the connection before
//! the client has read the answer.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BODY: &str =
    r#"{"detail":"The server is at its connection limit; try again shortly","code":"server.busy"}"#;
/// Longest a refused connection is kept.
const DEADLINE: Duration = Duration::from_secs(2);

pub async fn refuse(mut tcp: TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(DEADLINE, async {
        if tcp.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        let _ = tcp.shutdown().await;
        let mut sink = [0u8; 4096];
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match tcp.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}
