//! Faults between nodes: a peer killed while it holds a handed-off
//! generation, and a network partition that heals.

use super::{EXCHANGE, Node, spawn_chat};
use crate::common::proxy::{Mode, Proxy};
use reqwest::StatusCode;
use std::time::{Duration, Instant};

/// Limit on waiting for a first token in these tests.
const FIRST_TOKEN_MS: u64 = 3000;

fn quick(s: &mut mongars_config::Settings) {
    s.llm.resilience.first_token_timeout_ms = FIRST_TOKEN_MS;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_killed_before_its_first_token_leaves_the_request_to_another() {
    let a = Node::start("a", |_| {}).await;
    let b = Node::start("b", |_| {}).await;
    let c = Node::start("c", |_| {}).await;
    for (x, y) in [(&a, &b), (&a, &c), (&b, &a), (&c, &a)] {
        x.register(y).await;
    }
    a.wait_state(&b.peer_url(), "up").await;
    a.wait_state(&c.peer_url(), "up").await;
    a.saturate().await;
    let held = spawn_chat(&a, "held by a");
    a.wait_active(1).await;
    // B and C hold what they are given too: the next chat waits on one.
    b.saturate().await;
    c.saturate().await;
    let started = Instant::now();
    let chat = spawn_chat(&a, "who answers?");
    crate::common::eventually(EXCHANGE, "b or c holds the chat", || async {
        b.engine.active() + c.engine.active() == 1
    })
    .await;
    let (victim, other) = if b.engine.active() == 1 {
        (b, c)
    } else {
        (c, b)
    };
    other.open();
    let victim_url = victim.peer_url();
    victim.app.shutdown().await;
    let (status, body) = chat.await.unwrap();
    let took = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], format!("reply from {}", other.name));
    // Well within the first-token limit (30 s): the closed connection is
    // the signal, not a timeout.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // A stops counting on the dead peer once its reports are stale.
    let detect = Instant::now();
    a.app.clock.advance(Duration::from_secs(6));
    a.wait_state(&victim_url, "down").await;
    a.wait_idle(&other.peer_url()).await;
    eprintln!(
        "dead peer marked down {:?} after the staleness limit (5 s on the test clock)",
        detect.elapsed()
    );
    let (status, body) = a.chat("after the death").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], format!("reply from {}", other.name));
    a.open();
    assert_eq!(held.await.unwrap().1["response"], "reply from a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_marks_the_peer_down_and_traffic_moves_until_it_heals() {
    let a = Node::start("a", quick).await;
    let b = Node::start("b", |_| {}).await;
    let c = Node::start("c", |_| {}).await;
    // A and B reach each other only through a cuttable link.
    let to_b = Proxy::start(b.app.peer.as_ref().unwrap().0).await;
    let to_a = Proxy::start(a.app.peer.as_ref().unwrap().0).await;
    a.register_at(&b, &to_b.url()).await;
    b.register_at(&a, &to_a.url()).await;
    a.register(&c).await;
    c.register(&a).await;
    a.wait_state(&to_b.url(), "up").await;
    a.wait_state(&c.peer_url(), "up").await;
    a.saturate().await;
    let held = spawn_chat(&a, "held by a");
    a.wait_active(1).await;

    to_b.set(Mode::Blackhole);
    to_a.set(Mode::Blackhole);
    // Before the cut is noticed, a chat sent to B waits at most the
    // first-token limit, then C answers it.
    for i in 0..2 {
        let started = Instant::now();
        let (status, body) = a.chat(&format!("during the cut {i}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response"], "reply from c");
        assert!(
            started.elapsed() < Duration::from_millis(FIRST_TOKEN_MS) + Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }
    // No report for longer than the staleness limit: down.
    a.app.clock.advance(Duration::from_secs(6));
    a.wait_state(&to_b.url(), "down").await;
    a.wait_idle(&c.peer_url()).await;
    crate::common::eventually(EXCHANGE, "mongars_peer_up says b is down", || async {
        let m = a.metrics().await;
        let label = format!("mongars_peer_up{{peer=\"{}\"}} 0", to_b.url());
        m.lines().any(|l| l == label)
    })
    .await;
    let started = Instant::now();
    let (status, body) = a.chat("while b is down").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"], "reply from c");
    assert!(
        started.elapsed() < Duration::from_millis(FIRST_TOKEN_MS),
        "{:?}",
        started.elapsed()
    );

    // Healed: B reports again and gets work again (its breaker, opened by
    // the timeouts, cools down on A's clock).
    to_b.set(Mode::Pass);
    to_a.set(Mode::Pass);
    a.app.clock.advance(Duration::from_secs(60));
    a.wait_state(&to_b.url(), "up").await;
    let mut replies = Vec::new();
    for i in 0..4 {
        let (_, body) = a.chat(&format!("after the heal {i}")).await;
        replies.push(body["response"].as_str().unwrap_or("").to_string());
        if replies.last().unwrap() == "reply from b" {
            break;
        }
    }
    assert!(replies.iter().any(|r| r == "reply from b"), "{replies:?}");
    // The chat held by A's own engine all along ended at the first-token
    // limit with its code; it did not hang.
    let (status, body) = held.await.unwrap();
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_eq!(body["code"], "llm.timeout");
    a.open();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_lost_after_its_first_token_ends_the_reply_with_a_stable_code() {
    let a = Node::start("a", |_| {}).await;
    let words: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
    let slow = mongars_llm::scripted::ScriptedBackend::new(mongars_llm::scripted::Script::Reply(
        words.join(" "),
    ))
    .with_delay(Duration::from_millis(100));
    let b = Node::with_engine("b", slow, |_| {}).await;
    a.register(&b).await;
    b.register(&a).await;
    a.wait_state(&b.peer_url(), "up").await;
    a.saturate().await;
    let held = spawn_chat(&a, "held by a");
    a.wait_active(1).await;

    let mut resp = a
        .app
        .post_json(
            "/api/v1/conversation/chat/stream",
            serde_json::json!({"message": "a long one"}),
            Some(&a.user),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut text = String::new();
    while !text.contains("event: token") {
        let chunk = resp.chunk().await.unwrap().expect("the stream ended early");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("w0"), "{text}");
    // B goes away mid-reply.
    b.app.shutdown().await;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let last = text
        .split("\n\n")
        .filter(|block| block.contains("event: "))
        .last()
        .unwrap();
    assert!(last.contains("event: error"), "{text}");
    assert!(last.contains("llm.backend_failed"), "{text}");
    assert!(!text.contains("w39"), "the reply was not cut: {text}");
    a.open();
    let _ = held.await;
}
