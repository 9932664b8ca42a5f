//! Two `mongars serve` processes on one database and one Redis, as replicas
//! behind a load balancer: events, tickets and rate limits cross between them.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod process;

use futures_util::StreamExt;
use process::{start_server, terminate};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// The Redis started by `make test`; `None` (test skipped) outside CI.
fn redis_url() -> Option<String> {
    match std::env::var("MONGARS_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI must run the replica test: MONGARS_TEST_REDIS_URL is not set")
        }
        _ => {
            mongars_store::testing::skipped("no Redis (MONGARS_TEST_REDIS_URL not set)");
            None
        }
    }
}

async fn post(addr: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn socket(
    addr: &str,
    ticket: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    u16,
> {
    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws/chat/?t={ticket}")).await {
        Ok((s, _)) => Ok(s),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chat_through_one_replica_reaches_a_socket_on_the_other() {
    let Some(redis) = redis_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let prefix = format!("test{}", std::process::id());
    let env = [
        ("MONGARS_DATABASE__URL", db.as_str()),
        ("MONGARS_REDIS__URL", redis.as_str()),
        ("MONGARS_REDIS__KEY_PREFIX", prefix.as_str()),
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "replica-test-secret-replica-test-secret-0123",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_MEMORY__ENABLED", "false"),
        ("MONGARS_LLM__PROFILES__DEFAULT__GENERAL__MAX_TOKENS", "8"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "3"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "1"),
        // No ping (and so no recheck of the account) within the test: a
        // socket closed on revocation was told so through Redis.
        ("MONGARS_REALTIME__PING_INTERVAL_SECS", "3600"),
        ("MONGARS_REALTIME__PONG_TIMEOUT_SECS", "7200"),
        ("MONGARS_SERVER__IDLE_TIMEOUT_SECS", "7300"),
    ];
    let dir_a = dir.path().join("a");
    let dir_b = dir.path().join("b");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    let (mut a, addr_a, _la) = start_server(&dir_a, &env);
    let (mut b, addr_b, _lb) = start_server(&dir_b, &env);

    let login = reqwest::Client::new()
        .post(format!("http://{addr_a}/token"))
        .form(&[("username", "root"), ("password", "secret-password")])
        .send()
        .await
        .unwrap();
    let body: Value = login.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_string();

    // A ticket from A opens a socket on B, once: A refuses it afterwards.
    let (_, t) = post(&addr_a, "/api/v1/auth/ws/ticket", &token, json!({})).await;
    let ticket = t["ticket"]
        .as_str()
        .unwrap_or_else(|| panic!("ticket: {t}"));
    let mut on_b = socket(&addr_b, ticket).await.expect("B accepts A's ticket");
    assert_eq!(
        socket(&addr_a, ticket).await.err(),
        Some(401),
        "single use across replicas"
    );

    // Wait until B's subscription is live: an event from B reaches B.
    let (status, body) = post(
        &addr_b,
        "/api/v1/conversation/chat",
        &token,
        json!({"message": "One"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    wait_for_query(&mut on_b, "One").await;

    let (status, body) = post(
        &addr_a,
        "/api/v1/conversation/chat",
        &token,
        json!({"message": "Hello from A"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let heard = wait_for_query(&mut on_b, "Hello from A").await;
    assert_eq!(heard["data"]["response"], body["response"]);

    // The burst of 3 was spent on two replicas: the next chat is refused.
    let (status, _) = post(
        &addr_b,
        "/api/v1/conversation/chat",
        &token,
        json!({"message": "Three"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(
        &addr_a,
        "/api/v1/conversation/chat",
        &token,
        json!({"message": "Four"}),
    )
    .await;
    assert_eq!(status, 429, "{body}");

    // Disabling an account on A closes its socket on B (1008).
    let (status, body) = post(
        &addr_a,
        "/api/v1/user/register",
        &token,
        json!({"username": "ana", "password": "ana-password"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ana = reqwest::Client::new()
        .post(format!("http://{addr_b}/token"))
        .form(&[("username", "ana"), ("password", "ana-password")])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, t) = post(&addr_b, "/api/v1/auth/ws/ticket", &ana, json!({})).await;
    let mut anas_socket = socket(&addr_b, t["ticket"].as_str().unwrap())
        .await
        .expect("ana's socket on B");
    let disabled = reqwest::Client::new()
        .patch(format!("http://{addr_a}/api/v1/user/ana"))
        .bearer_auth(&token)
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    assert_eq!(close_code(&mut anas_socket).await, Some(1008));

    assert!(terminate(&mut a).success());
    assert!(terminate(&mut b).success());
}

/// Read until the server closes the socket; its close code.
async fn close_code(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Option<u16> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("closed within 30 s");
        match msg {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code.into()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return None,
        }
    }
}

/// Frames until a `chat.message` for `query`, which is returned.
async fn wait_for_query(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    query: &str,
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("event within 30 s")
            .expect("socket open")
            .unwrap();
        if let Message::Text(t) = msg {
            let frame: Value = serde_json::from_str(t.as_str()).unwrap();
            if frame["type"] == "chat.message" && frame["data"]["query"] == query {
                return frame;
            }
        }
    }
}
