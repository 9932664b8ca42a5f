//! A running server for tests: the real router and services from
//! `mongars::app::build`, on a fresh database, on 127.0.0.1 port 0.
#![allow(dead_code)]

pub mod fake;
pub mod proxy;
pub mod webdriver;
pub mod ws;

use mongars_config::{Secret, Settings};
use mongars_core::domain::{Password, Role, Username};
use mongars_core::ports::{LlmBackend, ManualClock};
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The signing key the tests' servers use, so tests can forge tokens.
pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub app_auth: std::sync::Arc<mongars_core::auth::AuthService>,
    pub settings: Settings,
    /// The clock of every service of this server: tests move it forward
    /// (and may freeze it) instead of sleeping.
    pub clock: Arc<ManualClock>,
    /// The peer listener's address and this node's id (`peers.enabled`).
    pub peer: Option<(SocketAddr, String)>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Settings for a test server: temp data folder, cheap argon2, fixed key.
pub fn settings(dir: &std::path::Path) -> Settings {
    let mut s = mongars_config::defaults().expect("defaults");
    s.data_dir = dir.to_path_buf();
    s.server.port = 0;
    s.server.shutdown_grace_secs = 2;
    s.auth.jwt_secret = Secret::new(TEST_JWT_SECRET);
    s.auth.argon2_memory_kib = 1024;
    s.auth.argon2_iterations = 1;
    s.embeddings.model_dir = embedder_dir();
    s.memory.enabled = shared_embedder().is_some();
    s
}

/// The embedding model folder, fetched by `make models`.
pub fn embedder_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
}

/// One in-process embedder for every test server of this binary (loading
/// it for each would cost a tenth of a second and 90 MB apiece). `None`
/// when the model is missing outside CI; memory is then off in tests.
pub fn shared_embedder() -> Option<Arc<dyn mongars_core::ports::Embedder>> {
    static EMBEDDER: std::sync::OnceLock<Option<Arc<dyn mongars_core::ports::Embedder>>> =
        std::sync::OnceLock::new();
    EMBEDDER
        .get_or_init(|| {
            let options = mongars_embed::MiniLmOptions::new(embedder_dir());
            match mongars_embed::MiniLm::load(&options) {
                Ok(m) => Some(Arc::new(m) as Arc<dyn mongars_core::ports::Embedder>),
                Err(e) => {
                    assert!(
                        std::env::var("CI").map_or(true, |v| v != "true"),
                        "CI=true but the embedding model is missing: {e}"
                    );
                    eprintln!("memory off in tests: {e}");
                    None
                }
            }
        })
        .clone()
}

/// The default model, fetched by `make models`. Missing: `None`, which fails
/// under CI=true.
pub fn model_path() -> Option<PathBuf> {
    mongars_store::testing::default_model()
}

/// A fresh database on the server of `MONGARS_TEST_POSTGRES_URL` (set by
/// `make test`). `None` when unset, which fails under CI=true.
pub async fn postgres_url() -> Option<String> {
    let admin = std::env::var("MONGARS_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let Some(admin) = admin else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but MONGARS_TEST_POSTGRES_URL is not set: run `make test`"
        );
        return None;
    };
    Some(mongars_store::testing::create_postgres_database(&admin).await)
}

/// The databases a storage test runs on: SQLite (`None`, the default), and a
/// fresh PostgreSQL database when the test server is there (always under
/// CI=true; outside CI a missing server is reported and left out).
pub async fn databases() -> Vec<Option<String>> {
    let mut dbs = vec![None];
    match postgres_url().await {
        Some(url) => dbs.push(Some(url)),
        None => mongars_store::testing::skipped(
            "PostgreSQL left out (MONGARS_TEST_POSTGRES_URL not set)",
        ),
    }
    dbs
}

/// Point settings at `db` (from [`databases`]).
pub fn use_db(s: &mut Settings, db: &Option<String>) {
    if let Some(url) = db {
        s.database.url = Secret::new(url.clone());
    }
}

/// Wait for `check` to hold, polling, for at most `within` (a condition,
/// not a duration, is what the caller waits for).
pub async fn eventually<F, Fut>(within: std::time::Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// A server whose replies come from a scripted backend.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let script = Script::Reply("Hello from the scripted backend. How can I help?".into());
        Self::spawn_scripted(adjust, Arc::new(ScriptedBackend::new(script))).await
    }

    pub async fn spawn_scripted(
        adjust: impl FnOnce(&mut Settings),
        llm: Arc<dyn LlmBackend>,
    ) -> Self {
        Self::start(adjust, Some(llm), None).await
    }

    /// A scripted server whose memory embeds through `embedder`.
    pub async fn spawn_embedding_with(
        embedder: Arc<dyn mongars_core::ports::Embedder>,
        llm: Arc<dyn LlmBackend>,
    ) -> Self {
        Self::launch(|_| {}, Some(llm), None, Some(embedder)).await
    }

    /// A scripted server whose sockets have a small kernel send buffer, so
    /// that a client that stops reading fills it quickly.
    pub async fn spawn_small_buffers(
        adjust: impl FnOnce(&mut Settings),
        llm: Arc<dyn LlmBackend>,
    ) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        Self::start(adjust, Some(llm), Some(socket.listen(128).unwrap())).await
    }

    /// A server on the real default model (`make models`); `None` when the
    /// model is missing outside CI.
    pub async fn spawn_real(adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let model = model_path()?;
        Some(
            Self::start(
                |s| {
                    s.llm.embedded.model_path = model;
                    // Test servers run side by side on a small machine, and
                    // llama.cpp's compute threads spin at their barriers: two
                    // engines of two threads each on two cores slow each
                    // other many times over. One thread per engine does not.
                    s.llm.embedded.threads = 1;
                    adjust(s);
                },
                None,
                None,
            )
            .await,
        )
    }

    async fn start(
        adjust: impl FnOnce(&mut Settings),
        llm: Option<Arc<dyn LlmBackend>>,
        listener: Option<tokio::net::TcpListener>,
    ) -> Self {
        Self::launch(adjust, llm, listener, shared_embedder()).await
    }

    async fn launch(
        adjust: impl FnOnce(&mut Settings),
        llm: Option<Arc<dyn LlmBackend>>,
        listener: Option<tokio::net::TcpListener>,
        embedder: Option<Arc<dyn mongars_core::ports::Embedder>>,
    ) -> Self {
        mongars_net::install_crypto();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = settings(dir.path());
        adjust(&mut s);
        let clock = Arc::new(ManualClock::new());
        let overrides = mongars::app::Overrides {
            llm,
            embedder,
            clock: Some(clock.clone()),
        };
        let app = mongars::app::build_with(s.clone(), overrides)
            .await
            .expect("build app");
        let listener = match listener {
            Some(l) => l,
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listener.local_addr().unwrap();
        let app_auth = app.auth.clone();
        let peer = app
            .peers
            .as_ref()
            .map(|(node, l)| (l.local_addr().unwrap(), node.node_id().to_string()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(mongars::app::serve(app, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            app_auth,
            settings: s,
            clock,
            peer,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Stop the server and wait for it to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("serve");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn add_user(&self, name: &str, password: &str, role: Role) {
        self.app_auth
            .create_user(
                Username::parse(name).unwrap(),
                &Password::new_secret(password, "password").unwrap(),
                role,
            )
            .await
            .expect("create user");
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("GET")
    }

    pub async fn post_json(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("POST")
    }

    pub async fn post_token(&self, username: &str, password: &str) -> Response {
        self.client
            .post(self.url("/token"))
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("POST /token")
    }

    /// Log in through `/api/v1/auth/login` and return the token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let resp = self
            .post_json(
                "/api/v1/auth/login",
                json!({"username": username, "password": password}),
                None,
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "login of {username}");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }
}

/// Status and JSON body of a response.
pub async fn status_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}
