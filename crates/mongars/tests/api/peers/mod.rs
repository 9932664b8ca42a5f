//! Peers: three nodes on loopback, each its own server with its own
//! database, scripted engine and peer listener. Engines are gated, so a
//! test decides when a node is saturated (its generations held before the
//! first token) instead of racing timings.

mod admin;
mod console;
mod faults;
mod handoff;
mod security;

use crate::common::{TestApp, eventually, status_json};
use mongars_config::Settings;
use mongars_core::domain::Role;
use mongars_llm::scripted::{Script, ScriptedBackend};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a condition that depends on the load exchange (one report a
/// second) may take on a loaded machine.
pub const EXCHANGE: Duration = Duration::from_secs(60);

pub struct Node {
    pub app: TestApp,
    /// Permits let held generations start; none: the engine is saturated.
    pub gate: Arc<Semaphore>,
    pub engine: Arc<ScriptedBackend>,
    pub admin: String,
    pub user: String,
    pub name: &'static str,
}

/// Settings of a node that hands work to peers when its engine is busy.
pub fn peer_settings(s: &mut Settings) {
    s.peers.enabled = true;
    s.peers.host = "127.0.0.1".into();
    s.peers.port = 0;
    s.peers.push_interval_secs = 1;
    s.peers.stale_after_secs = 5;
    s.peers.handoff_queue = 0;
    s.peers.concurrency = 1;
    for p in s.llm.profiles.values_mut() {
        p.general.backends = vec!["peers".into(), "embedded".into()];
        p.coding.backends = vec!["peers".into(), "embedded".into()];
    }
    s.llm.cache.enabled = false;
    s.memory.enabled = false;
}

impl Node {
    /// A node whose engine answers "reply from NAME"; its gate is open.
    pub async fn start(name: &'static str, adjust: impl FnOnce(&mut Settings)) -> Self {
        let engine = ScriptedBackend::new(Script::Reply(format!("reply from {name}")));
        Self::with_engine(name, engine, adjust).await
    }

    /// A node on `engine` (given a gate, open).
    pub async fn with_engine(
        name: &'static str,
        engine: ScriptedBackend,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let gate = Arc::new(Semaphore::new(1_000_000));
        let engine = Arc::new(engine.with_gate(gate.clone()));
        let app = TestApp::spawn_scripted(
            |s| {
                peer_settings(s);
                adjust(s);
            },
            engine.clone(),
        )
        .await;
        // A restarted node keeps its accounts.
        for (name, password, role) in [
            ("admin", "admin-password-1", Role::Admin),
            ("alice", "alice-password-1", Role::User),
        ] {
            let _ = app
                .app_auth
                .create_user(
                    mongars_core::domain::Username::parse(name).unwrap(),
                    &mongars_core::domain::Password::new_secret(password, "password").unwrap(),
                    role,
                )
                .await;
        }
        let admin = app.login("admin", "admin-password-1").await;
        let user = app.login("alice", "alice-password-1").await;
        Self {
            app,
            gate,
            engine,
            admin,
            user,
            name,
        }
    }

    /// Hold every generation from now on.
    pub async fn saturate(&self) {
        let held = self.gate.available_permits();
        self.gate.acquire_many(held as u32).await.unwrap().forget();
    }

    pub fn open(&self) {
        self.gate.add_permits(1000);
    }

    pub fn peer_url(&self) -> String {
        format!("https://{}", self.app.peer.as_ref().unwrap().0)
    }

    pub fn node_id(&self) -> String {
        self.app.peer.as_ref().unwrap().1.clone()
    }

    /// Register `other` here, at `url` (its listener, or a proxy to it).
    pub async fn register_at(&self, other: &Node, url: &str) {
        let (status, body) = status_json(
            self.app
                .post_json(
                    "/api/v1/peer/register",
                    json!({"url": url, "fingerprint": other.node_id()}),
                    Some(&self.admin),
                )
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    pub async fn register(&self, other: &Node) {
        self.register_at(other, &other.peer_url()).await;
    }

    pub async fn peers(&self) -> Value {
        let (status, body) =
            status_json(self.app.get("/api/v1/peer/list", Some(&self.admin)).await).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The state of the peer at `url` in this node's list.
    pub async fn state_of(&self, url: &str) -> Option<String> {
        let list = self.peers().await;
        list["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["url"] == url)
            .map(|p| p["state"].as_str().unwrap().to_string())
    }

    /// Wait until the peer at `url` is up here with a report that shows it
    /// idle. A report made while it finished a reply can arrive just after
    /// a test moves this node's clock past the staleness limit: up again,
    /// but full, so a chat would not be handed to it.
    pub async fn wait_idle(&self, url: &str) {
        eventually(
            EXCHANGE,
            &format!("{} sees {url} up and idle", self.name),
            || async {
                let list = self.peers().await;
                list["peers"].as_array().unwrap().iter().any(|p| {
                    let load = &p["last_load"];
                    p["url"] == url
                        && p["state"] == "up"
                        && load["active_workers"] == 0
                        && load["queue_depth"] == 0
                })
            },
        )
        .await;
    }

    pub async fn wait_state(&self, url: &str, state: &str) {
        eventually(
            EXCHANGE,
            &format!("{} sees {url} {state}", self.name),
            || async { self.state_of(url).await.as_deref() == Some(state) },
        )
        .await;
    }

    pub async fn chat(&self, message: &str) -> (StatusCode, Value) {
        status_json(
            self.app
                .post_json(
                    "/api/v1/conversation/chat",
                    json!({ "message": message }),
                    Some(&self.user),
                )
                .await,
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        let resp = self.app.get("/metrics", Some(&self.admin)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.text().await.unwrap()
    }

    /// Wait until this node's engine holds `n` generations.
    pub async fn wait_active(&self, n: usize) {
        eventually(EXCHANGE, &format!("{} holds {n}", self.name), || async {
            self.engine.active() == n
        })
        .await;
    }
}

/// The sum of the samples of `name` whose labels contain `labels`.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Three nodes that know each other, all up.
pub async fn trio() -> (Node, Node, Node) {
    let a = Node::start("a", |_| {}).await;
    let b = Node::start("b", |_| {}).await;
    let c = Node::start("c", |_| {}).await;
    for (x, y) in [(&a, &b), (&a, &c), (&b, &a), (&b, &c), (&c, &a), (&c, &b)] {
        x.register(y).await;
    }
    for (x, y) in [(&a, &b), (&a, &c)] {
        x.wait_state(&y.peer_url(), "up").await;
    }
    (a, b, c)
}

/// A chat of `node`'s user sent in the background: its status and body.
pub fn spawn_chat(node: &Node, message: &str) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let (client, url, token) = (
        node.app.client.clone(),
        node.app.url("/api/v1/conversation/chat"),
        node.user.clone(),
    );
    let message = message.to_string();
    tokio::spawn(async move {
        let resp = client
            .post(url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "message": message }))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    })
}
