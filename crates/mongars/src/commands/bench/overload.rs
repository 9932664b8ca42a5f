//! `mongars bench overload`: more concurrent chats than the embedded engine
//! can serve in time, one per user, in rounds, against a `mongars serve`
//! child on its default settings (memory on, the default model, SQLite). Reports, per round, how
//! the chats were answered (200, or 503 with `Retry-After`, or anything
//! else), how fast a refusal came, how long the accepted ones took, `/healthz`
//! and `/ready` latency while it happens next to the same probes on the idle
//! server (the baseline), and the server's RSS.

use super::accounts;
use super::args::OverloadBenchArgs;
use super::auth::{Server, rss_kib, wait_ready};
use super::pct;
use anyhow::bail;
use mongars_config::Settings;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies of `/healthz` and `/ready`, in milliseconds.
#[derive(Default)]
struct Probes {
    healthz: Vec<f64>,
    ready: Vec<f64>,
}

pub async fn run(settings: Settings, args: OverloadBenchArgs) -> anyhow::Result<i32> {
    let dir = std::env::temp_dir().join(format!("mongars-bench-overload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut quick = settings.clone();
    quick.auth.argon2_memory_kib = 8192;
    quick.auth.argon2_iterations = 1;
    let env = [
        (
            "MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE",
            "1000000".into(),
        ),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "1000000".into()),
        ("MONGARS_LOGGING__LEVEL", "error".to_string()),
    ];
    let started = Instant::now();
    let mut server = Server::spawn_with(&dir, &quick, &env)?;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.chats * 2)
        .build()?;
    wait_ready(&client, &base, started).await?;
    let admin = accounts::bootstrap_admin(&client, &base, "benchadmin").await?;
    // One person per chat, as when a team shares the server.
    let mut tokens = Vec::with_capacity(args.chats);
    for i in 0..args.chats {
        tokens.push(accounts::register(&client, &base, &admin, &format!("user{i}")).await?);
    }
    let pid = server.child.id();

    let idle = probe_for(&client, &base, 200).await;
    // One reply measured first, as a running server would have.
    let warm = chat(&client, &base, &admin).await;
    if warm.0 != 200 {
        bail!("the warm-up chat was answered {}", warm.0);
    }
    let idle_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);
    println!(
        "{} concurrent chats per round on the embedded engine (default settings, memory on); \
         idle RSS {:.1} MiB",
        args.chats,
        idle_rss as f64 / 1024.0
    );
    println!(
        "idle probes: /healthz p50 {:.2} ms p99 {:.2} ms, /ready p50 {:.2} ms p99 {:.2} ms",
        pct(&idle.healthz, 50.0),
        pct(&idle.healthz, 99.0),
        pct(&idle.ready, 50.0),
        pct(&idle.ready, 99.0)
    );
    let mut refusals = Vec::new();
    let mut all_probes = Probes::default();
    let mut peak_rss = idle_rss;
    let mut others = 0;
    for round in 1..=args.rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let prober = tokio::spawn(probe_until(
            client.clone(),
            base.clone(),
            stop.clone(),
            pid,
            peak.clone(),
        ));
        let round_start = Instant::now();
        let chats: Vec<_> = tokens
            .iter()
            .map(|token| {
                let (client, base, token) = (client.clone(), base.clone(), token.clone());
                tokio::spawn(async move { chat(&client, &base, &token).await })
            })
            .collect();
        let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
        let mut ok_ms = Vec::new();
        let mut round_refusals = Vec::new();
        for c in chats {
            let (status, ms, retry_after) = c.await?;
            let key = match (status, retry_after) {
                (503, true) => "503+Retry-After".to_string(),
                (s, _) => s.to_string(),
            };
            match key.as_str() {
                "200" => ok_ms.push(ms),
                "503+Retry-After" => round_refusals.push(ms),
                _ => others += 1,
            }
            *by_status.entry(key).or_default() += 1;
        }
        let took = round_start.elapsed();
        stop.store(true, Ordering::SeqCst);
        let probes = prober.await?;
        peak_rss = peak_rss.max(peak.load(Ordering::SeqCst));
        println!(
            "round {round}: {by_status:?} in {:.1} s; refusal p50 {:.1} ms p99 {:.1} ms; \
             answered p50 {:.0} ms max {:.0} ms; under load /healthz p99 {:.2} ms, /ready p99 {:.2} ms",
            took.as_secs_f64(),
            pct(&round_refusals, 50.0),
            pct(&round_refusals, 99.0),
            pct(&ok_ms, 50.0),
            ok_ms.iter().copied().fold(f64::NAN, f64::max),
            pct(&probes.healthz, 99.0),
            pct(&probes.ready, 99.0)
        );
        refusals.extend(round_refusals);
        all_probes.healthz.extend(probes.healthz);
        all_probes.ready.extend(probes.ready);
    }
    println!(
        "all rounds: refusals {} (p50 {:.1} ms, p99 {:.1} ms), other answers {others}; \
         /healthz p50 {:.2} ms p99 {:.2} ms ({:.1}x idle p99), /ready p50 {:.2} ms p99 {:.2} ms \
         ({:.1}x idle p99), {} probes; RSS idle {:.1} MiB, peak {:.1} MiB",
        refusals.len(),
        pct(&refusals, 50.0),
        pct(&refusals, 99.0),
        pct(&all_probes.healthz, 50.0),
        pct(&all_probes.healthz, 99.0),
        pct(&all_probes.healthz, 99.0) / pct(&idle.healthz, 99.0),
        pct(&all_probes.ready, 50.0),
        pct(&all_probes.ready, 99.0),
        pct(&all_probes.ready, 99.0) / pct(&idle.ready, 99.0),
        all_probes.healthz.len() + all_probes.ready.len(),
        idle_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if others == 0 { 0 } else { 1 })
}

/// One chat: its status, milliseconds, and whether it carried `Retry-After`.
async fn chat(client: &reqwest::Client, base: &str, token: &str) -> (u16, f64, bool) {
    let t = Instant::now();
    let resp = client
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(token)
        .json(&json!({"message": "Tell me about the sea in a few sentences."}))
        .send()
        .await;
    match resp {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key(reqwest::header::RETRY_AFTER);
            let _ = r.bytes().await;
            (status, t.elapsed().as_secs_f64() * 1e3, retry_after)
        }
        Err(_) => (0, t.elapsed().as_secs_f64() * 1e3, false),
    }
}

async fn timed_get(client: &reqwest::Client, url: &str) -> f64 {
    let t = Instant::now();
    let ok = client
        .get(url)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if ok {
        t.elapsed().as_secs_f64() * 1e3
    } else {
        f64::INFINITY // a failed probe counts as the slowest
    }
}

async fn probe_for(client: &reqwest::Client, base: &str, n: usize) -> Probes {
    let mut p = Probes::default();
    for _ in 0..n {
        p.healthz
            .push(timed_get(client, &format!("{base}/healthz")).await);
        p.ready
            .push(timed_get(client, &format!("{base}/ready")).await);
    }
    p
}

/// `/healthz` and `/ready` every 10 ms, and the server's RSS, until `stop`.
async fn probe_until(
    client: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
    pid: u32,
    peak: Arc<AtomicU64>,
) -> Probes {
    let mut p = Probes::default();
    while !stop.load(Ordering::SeqCst) {
        p.healthz
            .push(timed_get(&client, &format!("{base}/healthz")).await);
        p.ready
            .push(timed_get(&client, &format!("{base}/ready")).await);
        if let Some(rss) = rss_kib(pid, "VmRSS:") {
            peak.fetch_max(rss, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    p
}
