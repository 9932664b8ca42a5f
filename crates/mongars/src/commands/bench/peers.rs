//! Peers: the cost of handing a generation to a peer (the same prompt on
//! the peer's own engine next to through the mutual-TLS link), the
//! throughput of three nodes against one under the same load, and the time
//! a node takes to mark a stopped peer down. Nodes run in this process,
//! each with its own database, identity and peer listener on loopback.

use super::args::PeersBenchArgs;
use super::pct;
use crate::background::PeerTasks;
use anyhow::Context;
use async_trait::async_trait;
use mongars_config::Settings;
use mongars_core::domain::{
    ChatMessage, ChatRole, GenerationEvent, GenerationRequest, ModelRole, PeerState, SamplingParams,
};
use mongars_core::ports::{BackendHealth, GenerationStream, LlmBackend, LlmError, PeerDirectory};
use mongars_llm::scripted::{Script, ScriptedBackend};
use mongars_peer::{PeerNode, Peers};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A box that runs one generation at a time, the others waiting.
struct OneAtATime {
    inner: Arc<dyn LlmBackend>,
    slot: Arc<tokio::sync::Semaphore>,
    waiting: Arc<AtomicUsize>,
    running: Arc<AtomicUsize>,
}

#[async_trait]
impl LlmBackend for OneAtATime {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn model(&self) -> &str {
        self.inner.model()
    }
    fn context_window(&self) -> usize {
        self.inner.context_window()
    }
    async fn count_tokens(
        &self,
        role: ModelRole,
        prompts: &[Vec<ChatMessage>],
    ) -> Result<Vec<usize>, LlmError> {
        self.inner.count_tokens(role, prompts).await
    }
    async fn generate(&self, request: GenerationRequest) -> Result<GenerationStream, LlmError> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let permit = self.slot.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let permit = permit.map_err(|_| LlmError::Unavailable("stopped".into()))?;
        self.running.fetch_add(1, Ordering::SeqCst);
        let mut stream = match self.inner.generate(request).await {
            Ok(s) => s,
            Err(e) => {
                self.running.fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let running = self.running.clone();
        tokio::spawn(async move {
            let _permit = permit;
            while let Some(e) = stream.recv().await {
                if tx.send(e).await.is_err() {
                    break;
                }
            }
            running.fetch_sub(1, Ordering::SeqCst);
        });
        Ok(rx)
    }
    async fn health(&self) -> BackendHealth {
        BackendHealth {
            healthy: true,
            detail: "simulated".into(),
            active: self.running.load(Ordering::SeqCst),
            queued: self.waiting.load(Ordering::SeqCst),
        }
    }
}

async fn engine(settings: &Settings, args: &PeersBenchArgs) -> anyhow::Result<Arc<dyn LlmBackend>> {
    if args.engine == "embedded" {
        let mut cfg = crate::wiring::llm::embedded_config(settings);
        cfg.parallel = 1;
        cfg.threads = 1;
        let e = tokio::task::spawn_blocking(move || mongars_llm::embedded::load_backend(&cfg))
            .await?
            .context("llm.embedded.model_path")?;
        return Ok(Arc::new(e));
    }
    let words = vec!["word"; args.tokens as usize].join(" ");
    let inner =
        ScriptedBackend::new(Script::Reply(words)).with_delay(Duration::from_millis(args.token_ms));
    Ok(Arc::new(OneAtATime {
        inner: Arc::new(inner),
        slot: Arc::new(tokio::sync::Semaphore::new(1)),
        waiting: Arc::new(AtomicUsize::new(0)),
        running: Arc::new(AtomicUsize::new(0)),
    }))
}

struct Node {
    llm: Arc<dyn LlmBackend>,
    peer: Option<(Arc<PeerNode>, PeerTasks, String)>,
    dir: std::path::PathBuf,
}

impl Node {
    async fn start(
        base: &Settings,
        args: &PeersBenchArgs,
        tag: &str,
        peers: bool,
    ) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("mongars-bench-peers-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let mut s = base.clone();
        s.data_dir = dir.clone();
        s.database.url =
            mongars_config::Secret::new(format!("sqlite://{}", dir.join("node.db").display()));
        s.database.migrate_on_start = true;
        s.memory.enabled = false;
        s.llm.cache.enabled = false;
        s.peers.enabled = peers;
        s.peers.host = "127.0.0.1".into();
        s.peers.port = 0;
        s.peers.concurrency = 1;
        s.llm.profile = if peers { "peers" } else { "default" }.into();
        let overrides = crate::app::Overrides {
            llm: Some(engine(base, args).await?),
            ..Default::default()
        };
        let mut app = crate::app::build_with(s, overrides).await?;
        let llm: Arc<dyn LlmBackend> = app.llm.clone();
        let peer = match app.peers.take() {
            Some((node, listener)) => {
                let url = format!("https://{}", listener.local_addr()?);
                let tasks = crate::background::start_peers(node.clone(), listener, llm.clone());
                Some((node, tasks, url))
            }
            None => None,
        };
        Ok(Self { llm, peer, dir })
    }

    fn node(&self) -> &Arc<PeerNode> {
        &self.peer.as_ref().expect("a peer node").0
    }

    fn url(&self) -> String {
        self.peer.as_ref().expect("a peer node").2.clone()
    }

    async fn knows(&self, other: &Node) -> anyhow::Result<()> {
        Peers(self.node().clone())
            .register(&other.url(), other.node().node_id())
            .await?;
        Ok(())
    }

    fn state_of(&self, url: &str) -> Option<PeerState> {
        self.node()
            .members()
            .into_iter()
            .find(|m| m.url == url)
            .map(|m| m.status.state())
    }

    async fn wait_up(&self, url: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.state_of(url) != Some(PeerState::Up) {
            anyhow::ensure!(Instant::now() < deadline, "{url} never came up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    fn stop(self) {
        drop(self.peer);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn request(i: usize, tokens: u32) -> GenerationRequest {
    GenerationRequest::classified(
        vec![
            ChatMessage::new(ChatRole::System, format!("Session {i}. Answer briefly.")),
            ChatMessage::new(ChatRole::User, "Name three colours of the rainbow."),
        ],
        SamplingParams::greedy(tokens),
    )
}

/// Time to the first token and to the end of one generation, in ms.
async fn timed(llm: &dyn LlmBackend, req: GenerationRequest) -> anyhow::Result<(f64, f64)> {
    let start = Instant::now();
    let mut stream = llm.generate(req).await?;
    let mut first = None;
    while let Some(e) = stream.recv().await {
        match e? {
            GenerationEvent::Delta(_) => {
                first.get_or_insert_with(|| start.elapsed());
            }
            GenerationEvent::Done(_) => break,
        }
    }
    let total = start.elapsed();
    Ok((
        first.unwrap_or(total).as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
    ))
}

/// `generations` requests from `clients` at once through `llm`:
/// generations per second.
async fn throughput(
    llm: Arc<dyn LlmBackend>,
    clients: usize,
    generations: usize,
    tokens: u32,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (llm, next) = (llm.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= generations {
                    return Ok::<_, anyhow::Error>(());
                }
                timed(llm.as_ref(), request(i, tokens)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(generations as f64 / start.elapsed().as_secs_f64())
}

pub async fn run(settings: Settings, args: PeersBenchArgs) -> anyhow::Result<i32> {
    println!(
        "engine: {} ({} tokens per reply{}); peers push their load every {} s, stale after {} s",
        args.engine,
        args.tokens,
        if args.engine == "simulated" {
            format!(", {} ms per token, one at a time per node", args.token_ms)
        } else {
            ", one thread, one at a time per node".into()
        },
        settings.peers.push_interval_secs,
        settings.peers.stale_after_secs,
    );
    // 1. Hand-off overhead: B's own router next to A's link to B.
    let a = Node::start(&settings, &args, "a", true).await?;
    let b = Node::start(&settings, &args, "b", true).await?;
    a.knows(&b).await?;
    b.knows(&a).await?;
    a.wait_up(&b.url()).await?;
    let link = a.node().members()[0].guarded.backend.clone();
    let (mut local, mut remote) = (Vec::new(), Vec::new());
    for i in 0..args.requests {
        // Prompts of their own, so that neither side reuses the other's
        // prompt cache; the order alternates.
        let (mine, theirs) = (request(2 * i, args.tokens), request(2 * i + 1, args.tokens));
        let (l, r) = if i % 2 == 0 {
            let l = timed(b.llm.as_ref(), mine).await?;
            (l, timed(link.as_ref(), theirs).await?)
        } else {
            let r = timed(link.as_ref(), theirs).await?;
            (timed(b.llm.as_ref(), mine).await?, r)
        };
        local.push(l);
        remote.push(r);
    }
    let col = |v: &[(f64, f64)], f: fn(&(f64, f64)) -> f64| v.iter().map(f).collect::<Vec<_>>();
    for (what, f) in [
        (
            "first token",
            (|x: &(f64, f64)| x.0) as fn(&(f64, f64)) -> f64,
        ),
        ("whole reply", |x: &(f64, f64)| x.1),
    ] {
        let (l, r) = (col(&local, f), col(&remote, f));
        println!(
            "hand-off, {what} ({} requests): on the peer itself p50 {:.1} ms p99 {:.1} ms; through the link p50 {:.1} ms p99 {:.1} ms; overhead p50 {:+.1} ms p99 {:+.1} ms",
            args.requests,
            pct(&l, 50.0),
            pct(&l, 99.0),
            pct(&r, 50.0),
            pct(&r, 99.0),
            pct(&r, 50.0) - pct(&l, 50.0),
            pct(&r, 99.0) - pct(&l, 99.0),
        );
    }
    a.stop();
    b.stop();

    // 2. Throughput: one node, then three, under the same load on the first.
    let one = Node::start(&settings, &args, "one", false).await?;
    let single = throughput(one.llm.clone(), args.clients, args.generations, args.tokens).await?;
    one.stop();
    let nodes = [
        Node::start(&settings, &args, "x", true).await?,
        Node::start(&settings, &args, "y", true).await?,
        Node::start(&settings, &args, "z", true).await?,
    ];
    for (i, n) in nodes.iter().enumerate() {
        for (j, m) in nodes.iter().enumerate() {
            if i != j {
                n.knows(m).await?;
            }
        }
    }
    for m in &nodes[1..] {
        nodes[0].wait_up(&m.url()).await?;
    }
    let triple = throughput(
        nodes[0].llm.clone(),
        args.clients,
        args.generations,
        args.tokens,
    )
    .await?;
    let handed: u64 = nodes[0]
        .node()
        .members()
        .iter()
        .map(|m| m.handed_off.load(Ordering::Relaxed))
        .sum();
    println!(
        "throughput, {} clients on one node, {} generations: alone {:.2} gen/s; with two peers {:.2} gen/s ({:.2}x), {} of them generated by the peers",
        args.clients,
        args.generations,
        single,
        triple,
        triple / single,
        handed
    );

    // 3. A peer stops: how long until the first node marks it down.
    let [first, second, third] = nodes;
    let url = second.url();
    let stopped = Instant::now();
    second.stop();
    while first.state_of(&url) != Some(PeerState::Down) {
        anyhow::ensure!(
            stopped.elapsed() < Duration::from_secs(120),
            "the stopped peer was never marked down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "a stopped peer was marked down after {:.2} s (limit: stale_after_secs = {})",
        stopped.elapsed().as_secs_f64(),
        settings.peers.stale_after_secs
    );
    first.stop();
    third.stop();
    Ok(0)
}
