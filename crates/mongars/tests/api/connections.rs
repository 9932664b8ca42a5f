//! Connections from clients without credentials cannot hold the server:
//! unfinished headers and idle connections are closed, and past the cap a
//! connection is answered 503 at once.

use crate::common::{TestApp, eventually};
use mongars_core::domain::Role;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the server closes the connection; what it sent.
async fn until_closed(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    String::from_utf8_lossy(&got).into_owned()
}

async fn closed_by(app: &TestApp, reason: &str) -> f64 {
    app.add_user("root", "secret-password", Role::Admin).await;
    let admin = app.login("root", "secret-password").await;
    let text = app
        .get("/metrics", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    let prefix = format!("mongars_http_connections_closed_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn unfinished_headers_and_idle_keep_alives_are_closed() {
    let app = TestApp::spawn_with(|s| s.server.header_read_timeout_secs = 1).await;
    // Headers that never end.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    until_closed(&mut slow).await;
    // A kept-alive connection with no next request.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut idle).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(closed_by(&app, "header_timeout").await >= 2.0);
}

#[tokio::test]
async fn a_connection_where_nothing_moves_is_closed() {
    let app = TestApp::spawn_with(|s| {
        s.server.idle_timeout_secs = 3;
        s.server.request_timeout_secs = 2;
        s.llm.resilience.first_token_timeout_ms = 1000;
        s.realtime.ping_interval_secs = 1;
        s.realtime.pong_timeout_secs = 2;
    })
    .await;
    app.add_user("ana", "secret-password", Role::User).await;
    let token = app.login("ana", "secret-password").await;
    // Complete headers, then a body that never comes.
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/conversation/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"message\":"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    until_closed(&mut tcp).await;
    assert!(closed_by(&app, "idle").await >= 1.0);
}

#[tokio::test]
async fn past_the_cap_a_connection_is_answered_503_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.server.max_connections = 16;
        s.server.header_read_timeout_secs = 300;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut tcp = TcpStream::connect(app.addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(tcp);
    }
    // The server takes connections in order: once the 16 are being served,
    // the next ones are refused.
    let mut refused = TcpStream::connect(app.addr).await.unwrap();
    refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["code"], "server.busy");
    // Freed places are served again.
    drop(held);
    eventually(Duration::from_secs(30), "served again", || async {
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(closed_by(&app, "over_cap").await >= 1.0);
}
