//! Real HTTP servers on 127.0.0.1 port 0 that speak Ollama, OpenAI and Ray
//! Serve, and can be told to stall, answer 503 with Retry-After, drop the
//! connection mid-stream or send malformed data.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response, StatusCode, header};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Mode {
    /// A normal answer: `text` in two pieces.
    Ok(String),
    /// Accept and never answer.
    Stall,
    /// This status, with `Retry-After` seconds when given.
    Status(u16, Option<u64>),
    /// 200 with a body that is not the protocol's JSON.
    BadJson,
    /// A streamed answer cut before its end marker.
    Truncated,
    /// 200 with `text/html`.
    WrongContentType,
    /// The first piece, then the connection is dropped.
    DropMidStream,
    /// The first piece, then nothing more while the connection stays open.
    StallAfterFirst,
    /// This status with an error message that echoes the request's
    /// `Authorization` header back, as a careless proxy might.
    EchoAuth(u16),
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub at: Instant,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    pub hits: Arc<Mutex<Vec<Hit>>>,
    queue: Arc<Mutex<VecDeque<Mode>>>,
    default: Arc<Mutex<Mode>>,
    /// `/api/pull` fails with this message when set.
    pub pull_error: Arc<Mutex<Option<String>>>,
    pulled: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    pub async fn start(default: Mode) -> Self {
        Self::serve(default, None, "127.0.0.1").await
    }

    /// The same, listening on `ip` (an address of this machine).
    pub async fn start_on(default: Mode, ip: &str) -> Self {
        Self::serve(default, None, ip).await
    }

    /// The same, over HTTPS with a certificate from `pki`.
    pub async fn start_tls(default: Mode, pki: &tls::TestPki) -> Self {
        Self::serve(default, Some(pki), "127.0.0.1").await
    }

    async fn serve(default: Mode, tls: Option<&tls::TestPki>, ip: &str) -> Self {
        let fake = Fake {
            url: String::new(),
            hits: Arc::default(),
            queue: Arc::default(),
            default: Arc::new(Mutex::new(default)),
            pull_error: Arc::default(),
            pulled: Arc::new(Mutex::new(vec!["llama3.2:1b".into()])),
        };
        let f = fake.clone();
        let chat = move |path: &'static str| {
            let f = f.clone();
            move |headers: HeaderMap, body: Bytes| {
                let f = f.clone();
                async move { f.answer(path, headers, body).await }
            }
        };
        let f2 = fake.clone();
        let f3 = fake.clone();
        let app = Router::new()
            .route("/api/chat", post(chat("/api/chat")))
            .route("/v1/chat/completions", post(chat("/v1/chat/completions")))
            .route("/generate", post(chat("/generate")))
            .route(
                "/api/tags",
                get(move || {
                    let f = f2.clone();
                    async move {
                        let models: Vec<Value> = f
                            .pulled
                            .lock()
                            .unwrap()
                            .iter()
                            .map(|m| json!({"name": m}))
                            .collect();
                        axum::Json(json!({ "models": models }))
                    }
                }),
            )
            .route(
                "/api/pull",
                post(move |body: Bytes| {
                    let f = f3.clone();
                    async move { f.pull(body) }
                }),
            )
            .route(
                "/v1/models",
                get(|| async {
                    axum::Json(json!({"object": "list", "data": [{"id": "fake-model"}]}))
                }),
            )
            .route("/-/healthz", get(|| async { "success" }));
        let url = match tls {
            Some(pki) => tls::serve(app, pki).await,
            None => {
                let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
                let url = format!("http://{}", listener.local_addr().unwrap());
                tokio::spawn(async move { axum::serve(listener, app).await });
                url
            }
        };
        Fake { url, ..fake }
    }

    /// Modes for the next chat requests, in order; then the default.
    pub fn then(&self, modes: &[Mode]) {
        self.queue.lock().unwrap().extend(modes.iter().cloned());
    }

    pub fn set_default(&self, mode: Mode) {
        *self.default.lock().unwrap() = mode;
    }

    /// Chat requests received so far.
    pub fn chat_hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn pull(&self, body: Bytes) -> Response<Body> {
        let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let model = req["model"].as_str().unwrap_or("").to_string();
        let mut lines = vec![
            json!({"status": "pulling manifest"}),
            json!({"status": "downloading", "digest": "sha256:1", "total": 1000, "completed": 400}),
            json!({"status": "downloading", "digest": "sha256:1", "total": 1000, "completed": 1000}),
        ];
        match self.pull_error.lock().unwrap().clone() {
            Some(e) => lines.push(json!({ "error": e })),
            None => {
                lines.push(json!({"status": "success"}));
                self.pulled.lock().unwrap().push(model);
            }
        }
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        ndjson(text)
    }

    async fn answer(&self, path: &str, headers: HeaderMap, body: Bytes) -> Response<Body> {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        self.hits.lock().unwrap().push(Hit {
            path: path.to_string(),
            at: Instant::now(),
            authorization: headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.clone(),
        });
        let mode = self
            .queue
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.default.lock().unwrap().clone());
        let stream = body["stream"].as_bool().unwrap_or(false);
        match mode {
            Mode::Stall => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                status(StatusCode::GATEWAY_TIMEOUT, None)
            }
            Mode::Status(code, retry) => status(StatusCode::from_u16(code).unwrap(), retry),
            Mode::EchoAuth(code) => {
                let sent = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let message = format!("Invalid credentials in header 'Authorization: {sent}'");
                Response::builder()
                    .status(code)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({"error": {"message": message}}).to_string(),
                    ))
                    .unwrap()
            }
            Mode::StallAfterFirst => {
                let first = first_piece(path, stream);
                let s = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(first))])
                    .chain(futures_util::stream::pending());
                typed(path, stream, Body::from_stream(s))
            }
            Mode::WrongContentType => Response::builder()
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from("<html>proxy error page</html>"))
                .unwrap(),
            Mode::BadJson => match path {
                "/v1/chat/completions" => sse("data: {not json\n\n".into()),
                "/api/chat" => ndjson("{\"message\": oops\n".into()),
                _ => json_text("{\"text\": \"unterminated".into()),
            },
            Mode::Ok(text) => full(path, &text, stream),
            Mode::Truncated => {
                let whole = body_text(path, "cut short", stream);
                let cut = whole.lines().next().unwrap_or("").to_string() + "\n";
                typed(path, stream, Body::from(cut))
            }
            Mode::DropMidStream => {
                let first = first_piece(path, stream);
                let parts: Vec<Result<Bytes, std::io::Error>> = vec![
                    Ok(Bytes::from(first)),
                    Err(std::io::Error::other("connection dropped")),
                ];
                // A pause after the first piece, so it is on the wire before the drop.
                let s =
                    futures_util::StreamExt::then(futures_util::stream::iter(parts), |p| async {
                        if p.is_err() {
                            tokio::time::sleep(Duration::from_millis(150)).await;
                        }
                        p
                    });
                typed(path, stream, Body::from_stream(s))
            }
        }
    }
}

fn status(code: StatusCode, retry: Option<u64>) -> Response<Body> {
    let mut b = Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(s) = retry {
        b = b.header(header::RETRY_AFTER, s.to_string());
    }
    b.body(Body::from(json!({"error": "fake failure"}).to_string()))
        .unwrap()
}

fn ndjson(text: String) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(text))
        .unwrap()
}

fn sse(text: String) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from(text))
        .unwrap()
}

fn json_text(text: String) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(text))
        .unwrap()
}

fn typed(path: &str, stream: bool, body: Body) -> Response<Body> {
    let ct = match path {
        "/v1/chat/completions" if stream => "text/event-stream",
        "/api/chat" if stream => "application/x-ndjson",
        _ if stream => "application/x-ndjson",
        _ => "application/json",
    };
    Response::builder()
        .header(header::CONTENT_TYPE, ct)
        .body(body)
        .unwrap()
}

fn full(path: &str, text: &str, stream: bool) -> Response<Body> {
    typed(path, stream, Body::from(body_text(path, text, stream)))
}

/// The first line of a streamed reply, as a complete event.
fn first_piece(path: &str, stream: bool) -> String {
    let whole = body_text(path, "partial answer", stream);
    whole.lines().next().unwrap_or("").to_string() + "\n\n"
}

/// The whole protocol body for a reply of `text`, in two pieces.
fn body_text(path: &str, text: &str, stream: bool) -> String {
    let mid = text.find(' ').unwrap_or(text.len());
    let (a, b) = text.split_at(mid);
    match path {
        "/api/chat" if !stream => json!({"model": "fake-model",
            "message": {"role": "assistant", "content": text}, "done": true,
            "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 2})
        .to_string(),
        "/v1/chat/completions" if !stream => json!({"id": "x", "object": "chat.completion",
            "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
        .to_string(),
        "/api/chat" => [
            json!({"message": {"role": "assistant", "content": a}, "done": false}),
            json!({"message": {"role": "assistant", "content": b}, "done": false}),
            json!({"message": {"role": "assistant", "content": ""}, "done": true,
                   "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 2}),
        ]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect(),
        "/v1/chat/completions" => {
            let chunk = |c: &str| {
                json!({"id": "x", "object": "chat.completion.chunk", "model": "fake-model",
                       "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]})
            };
            let end = json!({"id": "x", "object": "chat.completion.chunk", "model": "fake-model",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 2}});
            format!(
                "data: {}\n\ndata: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
                chunk(a),
                chunk(b),
                end
            )
        }
        _ if stream => [
            json!({"delta": a}),
            json!({"delta": b}),
            json!({"done": true, "usage": {"prompt_tokens": 7, "completion_tokens": 2}}),
        ]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect(),
        _ => {
            json!({"text": text, "usage": {"prompt_tokens": 7, "completion_tokens": 2}}).to_string()
        }
    }
}

/// HTTPS for the fake servers: a throw-away CA made in the test, a
/// certificate for 127.0.0.1 signed by it, and an accept loop that speaks
/// TLS before handing each connection to the app.
pub mod tls {
    use axum::Router;
    use hyper_util::rt::TokioIo;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    use std::sync::Arc;

    /// A CA and a server certificate it signed.
    pub struct TestPki {
        /// The CA certificate, PEM: what a client must trust.
        pub ca_pem: String,
        server: rustls::ServerConfig,
    }

    impl TestPki {
        pub fn new() -> Self {
            let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.distinguished_name
                .push(DnType::CommonName, "monGARS test CA");
            let ca_key = KeyPair::generate().unwrap();
            let ca_cert = ca.self_signed(&ca_key).unwrap();
            let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
            leaf.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            let leaf_key = KeyPair::generate().unwrap();
            let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
            let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let server = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![leaf_cert.der().clone()], key)
                .unwrap();
            Self {
                ca_pem: ca_cert.pem(),
                server,
            }
        }
    }

    /// Serve `app` over TLS on 127.0.0.1; its `https://` base URL.
    pub async fn serve(app: Router, pki: &TestPki) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server.clone()));
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        url
    }
}
