//! Who gets in: an unregistered node is refused at the handshake, a
//! registered one reaches the peer API only, and a recorded request can be
//! neither replayed nor altered.

use super::{Node, metric};
use crate::common::proxy::{Mode, Proxy};
use mongars_peer::NodeIdentity;
use mongars_peer::trust::client_config;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Call `url` + `path` as the node of `identity`, expecting the peer's
/// key to be `expected`: the status and body, or why it failed.
pub async fn request(
    identity: &NodeIdentity,
    expected: &str,
    url: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    send(&client_as(identity, expected), url, path, body).await
}

/// An HTTP client that presents `identity` and expects the key `expected`.
pub fn client_as(identity: &NodeIdentity, expected: &str) -> reqwest::Client {
    let tls = client_config(identity, Some(expected.to_string()), None).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One call with `client`: the status and body, or why it failed.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), String> {
    let req = match body {
        Some(b) => client.post(format!("{url}{path}")).json(&b),
        None => client.get(format!("{url}{path}")),
    };
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("{e:?}"))?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

pub fn identity_of(node: &Node) -> NodeIdentity {
    NodeIdentity::load_or_create(&node.app.settings.data_dir).unwrap()
}

/// `from` calling `to`'s peer listener at `path` (GET).
pub async fn call_as(from: &Node, to: &Node, path: &str) -> Result<(u16, Value), String> {
    request(
        &identity_of(from),
        &to.node_id(),
        &to.peer_url(),
        path,
        None,
    )
    .await
}

fn prompt() -> Value {
    json!({
        "role": "general",
        "messages": [{"role": "user", "content": "hello over the link"}],
        "sampling": {"temperature": 0.0, "top_p": 1.0, "max_tokens": 16}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unregistered_node_is_refused_at_the_handshake() {
    let a = Node::start("a", |_| {}).await;
    let b = Node::start("b", |_| {}).await;
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = NodeIdentity::load_or_create(stranger_dir.path()).unwrap();
    let refused = request(
        &stranger,
        &a.node_id(),
        &a.peer_url(),
        "/peer/v1/load",
        None,
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    // Not registered yet: B is a stranger too.
    assert!(call_as(&b, &a, "/peer/v1/load").await.is_err());
    // The client may see the refusal before the listener's task counts it.
    crate::common::eventually(super::EXCHANGE, "both handshakes counted", || async {
        metric(
            &a.metrics().await,
            "mongars_peer_handshakes_total",
            "refused",
        ) >= 2.0
    })
    .await;

    a.register(&b).await;
    let (status, load) = call_as(&b, &a, "/peer/v1/load").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(load["scheduler_id"], a.node_id());
    // A node that answers with another key is not called: B expecting the
    // stranger's key at A's address refuses A.
    let wrong = request(
        &identity_of(&b),
        &stranger.fingerprint,
        &a.peer_url(),
        "/peer/v1/load",
        None,
    )
    .await;
    assert!(wrong.is_err(), "{wrong:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_peer_reaches_the_peer_api_and_nothing_else() {
    let a = Node::start("a", |_| {}).await;
    let b = Node::start("b", |_| {}).await;
    a.register(&b).await;
    let id = identity_of(&b);
    for path in [
        "/api/v1/peer/list",
        "/api/v1/admin/users",
        "/api/v1/conversation/history",
        "/metrics",
        "/healthz",
    ] {
        let (status, body) = request(&id, &a.node_id(), &a.peer_url(), path, None)
            .await
            .unwrap();
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["code"], "peer.forbidden", "{path}");
    }
    let (status, body) = request(
        &id,
        &a.node_id(),
        &a.peer_url(),
        "/api/v1/conversation/chat",
        Some(json!({"message": "hi"})),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("peer.forbidden"))
    );
    // The peer API: generation streams back as JSON lines.
    let (status, body) = request(
        &id,
        &a.node_id(),
        &a.peer_url(),
        "/peer/v1/generate",
        Some(prompt()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let text = body.as_str().unwrap();
    assert!(text.contains("{\"delta\":\"reply\"}"), "{text}");
    assert!(
        text.lines().last().unwrap().starts_with("{\"done\""),
        "{text}"
    );
    // Bad input is refused with a code, and a load report must be the
    // caller's own.
    let (status, body) = request(
        &id,
        &a.node_id(),
        &a.peer_url(),
        "/peer/v1/generate",
        Some(json!({"role": "general", "messages": [], "sampling": {}})),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("peer.invalid_request"))
    );
    let forged = json!({"scheduler_id": a.node_id(), "queue_depth": 0, "active_workers": 0,
        "concurrency": 1, "load_factor": 0.0, "tokens_per_second": 0.0, "models": []});
    let (status, body) = request(
        &id,
        &a.node_id(),
        &a.peer_url(),
        "/peer/v1/load",
        Some(forged),
    )
    .await
    .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("peer.invalid_load"))
    );
    // A peer certificate is no credential on the public port.
    let resp = a.app.get("/api/v1/peer/list", None).await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_or_altered_peer_request_is_refused() {
    let a = Node::start("a", |_| {}).await;
    let b = Node::start("b", |_| {}).await;
    a.register(&b).await;
    let proxy = Proxy::start(a.app.peer.as_ref().unwrap().0).await;
    let id = identity_of(&b);
    let served = |m: &str| metric(m, "mongars_peer_served_total", "outcome=\"ok\"");

    // One genuine request through the proxy, recorded.
    let (status, _) = request(
        &id,
        &a.node_id(),
        &proxy.url(),
        "/peer/v1/generate",
        Some(prompt()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let recorded = proxy.recorded();
    assert!(recorded.len() > 500);
    assert_eq!(served(&a.metrics().await), 1.0);
    let refused_before = metric(
        &a.metrics().await,
        "mongars_peer_handshakes_total",
        "refused",
    );

    // Replayed byte for byte on a new connection: the handshake fails and
    // nothing runs.
    let mut raw = tokio::net::TcpStream::connect(a.app.peer.as_ref().unwrap().0)
        .await
        .unwrap();
    raw.write_all(&recorded).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), raw.read_to_end(&mut answer)).await;
    crate::common::eventually(super::EXCHANGE, "the replay refused", || async {
        metric(
            &a.metrics().await,
            "mongars_peer_handshakes_total",
            "refused",
        ) > refused_before
    })
    .await;
    assert_eq!(
        served(&a.metrics().await),
        1.0,
        "the replay generated nothing"
    );

    // The same request with one bit of its last record flipped in transit.
    proxy.set(Mode::FlipAt(inside_the_last_request_record(&recorded)));
    let altered = request(
        &id,
        &a.node_id(),
        &proxy.url(),
        "/peer/v1/generate",
        Some(prompt()),
    )
    .await;
    assert!(altered.is_err(), "{altered:?}");
    assert_eq!(served(&a.metrics().await), 1.0, "the altered request ran");
    proxy.set(Mode::Pass);
    let (status, _) = request(
        &id,
        &a.node_id(),
        &proxy.url(),
        "/peer/v1/generate",
        Some(prompt()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(served(&a.metrics().await), 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_load_report_naming_another_key_than_its_certificate_is_not_believed() {
    let a = Node::start("a", |_| {}).await;
    // A listener with its own registered key that claims to be someone else.
    let dir = tempfile::tempdir().unwrap();
    let liar = NodeIdentity::load_or_create(dir.path()).unwrap();
    let registered = mongars_peer::trust::Registered::default();
    registered.replace([a.node_id()]);
    let tls = mongars_peer::trust::server_config(&liar, registered, None).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let answer = json!({"scheduler_id": "ab".repeat(32), "queue_depth": 0, "active_workers": 0,
        "concurrency": 4, "load_factor": 0.0, "tokens_per_second": 0.0, "models": ["scripted"]})
    .to_string();
    let server = tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, answer) = (acceptor.clone(), answer.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_req| {
                    let body = answer.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(axum::body::Body::from(body))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let (status, _) = crate::common::status_json(
        a.app
            .post_json(
                "/api/v1/peer/register",
                json!({"url": url, "fingerprint": liar.fingerprint}),
                Some(&a.admin),
            )
            .await,
    )
    .await;
    assert_eq!(status, 200);
    // Its answers arrive, and are refused each time: it never comes up.
    crate::common::eventually(super::EXCHANGE, "two refused reports", || async {
        let m = a.metrics().await;
        metric(&m, "mongars_peer_load_reports_total", "outcome=\"failed\"") >= 2.0
    })
    .await;
    assert_eq!(a.state_of(&url).await.as_deref(), Some("down"));
    server.abort();
}

/// An offset in the middle of the last long TLS record the client sent:
/// part of the request, whatever else the recording holds after it (the
/// client's close_notify, a record of 19 bytes, may or may not have passed
/// the proxy when it was read, so "20 bytes before the end" was sometimes
/// past the request). Records are a type byte, the version, a big-endian
/// length and that many bytes.
fn inside_the_last_request_record(recorded: &[u8]) -> usize {
    let mut at = 0;
    let mut chosen = None;
    while at + 5 <= recorded.len() {
        let len = usize::from(u16::from_be_bytes([recorded[at + 3], recorded[at + 4]]));
        if recorded[at] == 23 && len > 64 && at + 5 + len <= recorded.len() {
            chosen = Some(at + 5 + len / 2);
        }
        at += 5 + len;
    }
    chosen.expect("the recording holds an application data record")
}
