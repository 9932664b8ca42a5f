//! Realtime sessions as a browser or phone uses them: tickets, handshakes,
//! events of every turn, chat over the socket, heartbeats and back-pressure.

use crate::common::{TestApp, status_json};
use mongars_core::domain::Role;
use mongars_llm::scripted::{Script, ScriptedBackend};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn two_users(app: &TestApp) -> (String, String) {
    app.add_user("ana", "secret-password", Role::User).await;
    app.add_user("bob", "secret-password", Role::User).await;
    (
        app.login("ana", "secret-password").await,
        app.login("bob", "secret-password").await,
    )
}

async fn chat(app: &TestApp, token: &str, message: &str) {
    let (status, body) = status_json(
        app.post_json(
            "/api/v1/conversation/chat",
            json!({ "message": message }),
            Some(token),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_socket_hears_its_users_turns_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let (ana, bob) = two_users(&app).await;
    chat(&app, &ana, "An earlier question").await;

    let mut tab = app.socket(&ana).await;
    let first = tab.until("ws.connected").await;
    assert_eq!(first["user"], "ana");
    assert_eq!(first["data"]["origin"], format!("http://{}", app.addr));
    for key in ["id", "ts"] {
        assert!(!first[key].is_null(), "{first}");
    }
    let snapshot = tab.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(snapshot["type"], "history.snapshot");
    assert_eq!(snapshot["data"]["items"][0]["query"], "An earlier question");
    let mut other = app.socket(&bob).await;
    other.until("history.snapshot").await;

    chat(&app, &ana, "Hello over HTTP").await;
    let chunk = tab.until("ai_model.response_chunk").await;
    assert!(chunk["data"]["delta"].is_string());
    let done = tab.until("ai_model.response_complete").await;
    assert_eq!(done["data"]["ok"], true);
    let message = tab.until("chat.message").await;
    assert_eq!(message["data"]["query"], "Hello over HTTP");
    assert_eq!(message["data"]["response"], done["data"]["text"]);
    assert!(message["data"]["speech_turn"]["segments"].is_array());

    // Bob's socket answers his ping and has heard nothing of Ana's turn.
    other.send(json!({"id": "p1", "type": "client.ping"})).await;
    let ack = other.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        ack,
        json!({"id": "p1", "type": "ack", "payload": {"status": "ok"}})
    );
}

#[tokio::test]
async fn tickets_are_single_use_short_lived_and_bound_to_their_user() {
    let app = TestApp::spawn_with(|s| {
        s.realtime.ticket_ttl_secs = 1;
        s.realtime.ticket_skew_secs = 0;
    })
    .await;
    // A one-second ticket outlives any slow step: time moves only when told.
    app.clock.freeze();
    let (ana, bob) = two_users(&app).await;
    let (status, body) = status_json(
        app.post_json("/api/v1/auth/ws/ticket", json!({}), Some(&ana))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["ttl"], 1);
    let ticket = body["ticket"].as_str().unwrap().to_string();
    assert!(app.open(&ticket, None, None).await.is_ok());
    assert_eq!(
        app.open(&ticket, None, None).await.err(),
        Some(401),
        "reused"
    );

    let stale = app.ticket(&ana).await;
    app.clock.advance(Duration::from_millis(1001));
    assert_eq!(
        app.open(&stale, None, None).await.err(),
        Some(401),
        "expired"
    );

    let anas = app.ticket(&ana).await;
    assert_eq!(
        app.open(&anas, None, Some(&bob)).await.err(),
        Some(401),
        "another user's ticket"
    );
    assert_eq!(app.open("not-a-ticket", None, None).await.err(), Some(401));
    assert_eq!(app.open("", None, None).await.err(), Some(401));
    let (status, _) = status_json(
        app.post_json("/api/v1/auth/ws/ticket", json!({}), None)
            .await,
    )
    .await;
    assert_eq!(status, 401, "tickets need a signed-in user");
}

#[tokio::test]
async fn origins_local_network_widening_and_cors() {
    let app = TestApp::spawn().await;
    app.add_user("ana", "secret-password", Role::User).await;
    let ana = app.login("ana", "secret-password").await;
    let phone = "http://192.168.1.23:8000";
    let t = app.ticket(&ana).await;
    assert_eq!(
        app.open(&t, Some("https://evil.example"), None).await.err(),
        Some(403)
    );
    let t = app.ticket(&ana).await;
    assert!(
        app.open(&t, Some(phone), None).await.is_ok(),
        "all origins local"
    );

    let preflight = |origin: &'static str| {
        let client = app.client.clone();
        let url = app.url("/api/v1/conversation/chat");
        async move {
            client
                .request(reqwest::Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let ok = preflight("http://192.168.1.23:8000").await;
    assert_eq!(ok.headers()["access-control-allow-origin"], phone);
    let refused = preflight("https://evil.example").await;
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let public = TestApp::spawn_with(|s| {
        s.server.allowed_origins = vec![
            "http://localhost:8000".into(),
            "https://chat.example.com".into(),
        ];
    })
    .await;
    public.add_user("ana", "secret-password", Role::User).await;
    let ana = public.login("ana", "secret-password").await;
    let t = public.ticket(&ana).await;
    assert_eq!(
        public.open(&t, Some(phone), None).await.err(),
        Some(403),
        "one public origin"
    );
    let t = public.ticket(&ana).await;
    assert!(
        public
            .open(&t, Some("https://chat.example.com"), None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_chat_sent_over_one_tab_streams_to_both_and_frames_are_acknowledged() {
    let app = TestApp::spawn().await;
    let (ana, _) = two_users(&app).await;
    let mut one = app.socket(&ana).await;
    let mut two = app.socket(&ana).await;
    one.until("history.snapshot").await;
    two.until("history.snapshot").await;

    one.send(json!({"id": "c1", "type": "chat.send", "payload": {"message": "Hi from tab one"}}))
        .await;
    let ack = one.until("ack").await;
    assert_eq!(ack["id"], "c1");
    assert_eq!(ack["payload"]["status"], "ok");
    for tab in [&mut one, &mut two] {
        tab.until("ai_model.response_chunk").await;
        let message = tab.until("chat.message").await;
        assert_eq!(message["data"]["query"], "Hi from tab one");
    }
    let (_, history) = status_json(app.get("/api/v1/conversation/history", Some(&ana)).await).await;
    assert_eq!(history[0]["query"], "Hi from tab one");

    for (text, detail) in [
        ("not json", "invalid_json"),
        ("[1]", "invalid_envelope"),
        (r#"{"id":"x"}"#, "missing_type"),
        (r#"{"type":"pong"}"#, "missing_id"),
        (
            r#"{"id":"y","type":"chat.send","payload":{}}"#,
            "invalid_payload",
        ),
    ] {
        one.send_text(text).await;
        let ack = one.until("ack").await;
        assert_eq!(
            ack["payload"],
            json!({"status": "error", "detail": detail}),
            "{text}"
        );
    }
    one.send(json!({"id": "e", "type": "chat.send", "payload": {"message": "   "}}))
        .await;
    assert_eq!(
        one.until("ack").await["payload"]["detail"],
        "request.validation"
    );

    one.send(json!({"id": "bye", "type": "close"})).await;
    assert_eq!(one.until("ack").await["id"], "bye");
    assert_eq!(one.close_code(Duration::from_secs(5)).await, Some(1000));
}

#[tokio::test]
async fn a_silent_client_is_closed_with_1011() {
    let app = TestApp::spawn_with(|s| {
        s.realtime.ping_interval_secs = 1;
        s.realtime.pong_timeout_secs = 2;
    })
    .await;
    let (ana, _) = two_users(&app).await;
    let mut tab = app.socket(&ana).await;
    let ping = tab.until("ping").await;
    assert!(ping["payload"].is_null() && ping["id"].is_string());
    assert_eq!(tab.close_code(Duration::from_secs(5)).await, Some(1011));

    // Answering pings keeps a socket open past the timeout.
    let mut alive = app.socket(&ana).await;
    for _ in 0..3 {
        let ping = alive.until("ping").await;
        alive.send(json!({"id": ping["id"], "type": "pong"})).await;
    }
}

#[tokio::test]
async fn with_events_off_tickets_and_handshakes_are_refused_and_chat_works() {
    let app = TestApp::spawn_with(|s| s.realtime.enabled = false).await;
    let (ana, _) = two_users(&app).await;
    let (status, body) = status_json(
        app.post_json("/api/v1/auth/ws/ticket", json!({}), Some(&ana))
            .await,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (403, Some("realtime.disabled"))
    );
    assert_eq!(app.open(&"a".repeat(64), None, None).await.err(), Some(403));
    chat(&app, &ana, "Still here").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_is_closed_with_1013_and_others_keep_up() {
    let words = "word ".repeat(20);
    let llm = Arc::new(ScriptedBackend::new(Script::Reply(words)));
    let app = TestApp::spawn_small_buffers(
        |s| {
            s.conversation.rate_limit_burst = 1000;
            s.conversation.rate_limit_per_minute = 60_000;
        },
        llm,
    )
    .await;
    let (ana, bob) = two_users(&app).await;
    let mut slow = slow_socket(&app, &ana).await;
    let mut fast = app.socket(&ana).await;
    let mut other = app.socket(&bob).await;
    fast.until("history.snapshot").await;
    other.until("history.snapshot").await;
    // A client that reads as frames come, like a browser tab.
    let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let frame = fast.until("chat.message").await;
            if heard_tx.send(frame["data"]["query"].clone()).is_err() {
                return;
            }
        }
    });
    for i in 0..30 {
        chat(&app, &ana, &format!("Message {i}")).await;
        assert_eq!(heard.recv().await.unwrap(), format!("Message {i}"));
    }
    chat(&app, &bob, "Bob is fine").await;
    assert_eq!(
        other.until("chat.message").await["data"]["query"],
        "Bob is fine"
    );
    assert_eq!(slow.close_code(Duration::from_secs(20)).await, Some(1013));
    let metrics = app.get("/metrics", Some(&admin(&app).await)).await;
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("mongars_ws_closed_total{reason=\"slow_consumer\"} 1"),
        "{text}"
    );
}

async fn admin(app: &TestApp) -> String {
    app.add_user("root", "secret-password", Role::Admin).await;
    app.login("root", "secret-password").await
}

/// A socket with a tiny receive buffer that the test does not read from.
async fn slow_socket(app: &TestApp, token: &str) -> crate::common::ws::Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let ticket = app.ticket(token).await;
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(2048).unwrap();
    let stream = tcp.connect(app.addr).await.unwrap();
    let req = format!("ws://{}/ws/chat/?t={ticket}", app.addr)
        .into_client_request()
        .unwrap();
    let (inner, _) =
        tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
    crate::common::ws::Socket { inner }
}

#[tokio::test]
async fn a_frame_too_large_closes_with_1009_and_bad_text_with_1007() {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let app = TestApp::spawn_with(|s| s.realtime.max_frame_bytes = 4096).await;
    let (ana, _) = two_users(&app).await;

    let mut big = app.socket(&ana).await;
    big.until("history.snapshot").await;
    let text = format!(
        "{{\"id\":\"1\",\"type\":\"x\",\"pad\":\"{}\"}}",
        "x".repeat(8192)
    );
    futures_util::SinkExt::send(&mut big.inner, Message::text(text))
        .await
        .unwrap();
    assert_eq!(big.close_code(Duration::from_secs(10)).await, Some(1009));

    let mut bad = app.socket(&ana).await;
    bad.until("history.snapshot").await;
    let invalid = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    futures_util::SinkExt::send(&mut bad.inner, Message::Frame(invalid))
        .await
        .unwrap();
    assert_eq!(bad.close_code(Duration::from_secs(10)).await, Some(1007));

    // Others are unaffected.
    let mut fine = app.socket(&ana).await;
    fine.until("history.snapshot").await;
    fine.send(json!({"id": "p", "type": "client.ping"})).await;
    assert_eq!(fine.until("ack").await["payload"]["status"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_sockets_past_the_cap_is_refused_and_the_open_ones_keep_working() {
    let app = TestApp::spawn_with(|s| {
        s.realtime.max_sockets_per_user = 4;
        s.realtime.tickets_per_minute = 100_000;
        s.realtime.ticket_burst = 100_000;
    })
    .await;
    let (ana, _) = two_users(&app).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut tab = app.socket(&ana).await;
        tab.until("history.snapshot").await;
        open.push(tab);
    }
    // Sixty more handshakes at once, each with a valid ticket.
    let mut tickets = Vec::new();
    for _ in 0..60 {
        tickets.push(app.ticket(&ana).await);
    }
    let origin = format!("http://{}", app.addr);
    let flood = tickets.iter().map(|t| app.open(t, Some(&origin), None));
    for outcome in futures_util::future::join_all(flood).await {
        match outcome {
            Ok(_) => panic!("a socket past the cap was accepted"),
            Err(status) => assert_eq!(status, 429, "refused as too many"),
        }
    }
    // The open ones are untouched.
    chat(&app, &ana, "After the flood").await;
    for tab in &mut open {
        let message = tab.until("chat.message").await;
        assert_eq!(message["data"]["query"], "After the flood");
    }
    // A closed socket frees its place.
    let mut closed = open.pop().unwrap();
    closed.inner.close(None).await.unwrap();
    crate::common::eventually(Duration::from_secs(20), "a place frees up", || async {
        let t = app.ticket(&ana).await;
        app.open(&t, Some(&origin), None).await.is_ok()
    })
    .await;
}
