//! `mongars bench soak --minutes N`: a `mongars serve` child (SQLite,
//! memory on) under mixed traffic from a few users at a time for N
//! minutes: chats over HTTP and over WebSocket, logins, memories written,
//! edited, searched and deleted, history read. Each client becomes a new
//! user every `--rotate-every` actions, as members of a team come and go, so
//! that what the server keeps per user reaches its bounds. Against an instant OpenAI-compatible fake in
//! a process of its own, so that what grows is the server's. Every minute
//! one row: requests, errors, p50/p99, the server's RSS (and, from its own
//! `/metrics`, the heap and SQLite's share of it) and open descriptors, each
//! the median of `--samples` readings spread over the minute, and the
//! database size; at the end the slope of RSS and descriptors over the
//! minutes after warm-up (least squares), which must be indistinguishable
//! from zero.

use super::accounts;
use super::args::SoakBenchArgs;
use super::auth::{Server, rss_kib, wait_ready};
use super::chat::FakeBackend;
use super::pct;
use super::realtime::{Socket, open};
use super::trend::{Trend, slope};
use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use mongars_config::Settings;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// What the minute so far has seen.
#[derive(Default)]
struct Minute {
    latencies: Vec<f64>,
    errors: usize,
}

struct Client {
    http: reqwest::Client,
    base: String,
    addr: String,
    admin: String,
    name: String,
    token: String,
    /// Actions before this client becomes a new user.
    rotate: usize,
}

pub async fn run(settings: Settings, args: SoakBenchArgs) -> anyhow::Result<i32> {
    let fake = FakeBackend::spawn()?;
    let dir = std::env::temp_dir().join(format!("mongars-bench-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let mut quick = settings.clone();
    quick.auth.argon2_memory_kib = 8192;
    quick.auth.argon2_iterations = 1;
    let env = [
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS",
            "openai".to_string(),
        ),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS",
            "openai".to_string(),
        ),
        ("MONGARS_LLM__BACKENDS__OPENAI__URL", fake.url.clone()),
        ("MONGARS_LLM__BACKENDS__OPENAI__MODEL", "fake".to_string()),
        (
            "MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE",
            "1000000".to_string(),
        ),
        (
            "MONGARS_CONVERSATION__RATE_LIMIT_BURST",
            "1000000".to_string(),
        ),
        (
            "MONGARS_REALTIME__TICKETS_PER_MINUTE",
            "1000000".to_string(),
        ),
        ("MONGARS_REALTIME__TICKET_BURST", "1000000".to_string()),
        // Few enough users' indexes in memory that users coming and going
        // reach the bound within minutes.
        ("MONGARS_MEMORY__INDEX_CACHE_USERS", "16".to_string()),
        ("MONGARS_LOGGING__LEVEL", "error".to_string()),
    ];
    let env: Vec<(&str, String)> = env.into_iter().collect();
    let started = Instant::now();
    let mut server = Server::spawn_with(&dir, &quick, &env)?;
    let base = format!("http://{}", server.addr);
    let http = reqwest::Client::new();
    wait_ready(&http, &base, started).await?;
    let pid = server.child.id();
    let admin = accounts::bootstrap_admin(&http, &base, "soakadmin").await?;
    let mut clients = Vec::new();
    for i in 0..args.clients {
        let name = format!("soak{i}");
        clients.push(Client {
            http: http.clone(),
            base: base.clone(),
            addr: server.addr.clone(),
            admin: admin.clone(),
            token: accounts::register(&http, &base, &admin, &name).await?,
            name,
            rotate: args.rotate_every,
        });
    }
    let minute = Arc::new(Mutex::new(Minute::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let turn = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (minute, stop, turn) = (minute.clone(), stop.clone(), turn.clone());
            tokio::spawn(async move { work(c, i as u64 + 1, minute, stop, turn).await })
        })
        .collect();
    println!(
        "{} users, {} minutes of chats (HTTP and WebSocket), logins, memory edits and history reads",
        args.clients, args.minutes
    );
    println!(
        "{:>6} {:>8} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>5} {:>9}",
        "min",
        "requests",
        "errors",
        "p50 ms",
        "p99 ms",
        "RSS MiB",
        "anon MiB",
        "heap MiB",
        "SQL MiB",
        "fds",
        "db MiB"
    );
    let mut rows: Vec<Row> = Vec::new();
    let samples = args.samples.max(1);
    let period = Duration::from_secs_f64(args.interval_secs / samples as f64);
    let mut next = tokio::time::Instant::now() + period;
    for m in 1..=((args.minutes * 60.0 / args.interval_secs).round() as usize) {
        // Signed in afresh each row: a soak may outlast a token.
        let token = accounts::login(&http, &base, "soakadmin").await.ok();
        let mut readings = Vec::with_capacity(samples);
        for _ in 0..samples {
            tokio::time::sleep_until(next).await;
            next += period;
            readings.push(read(pid, &http, &base, token.as_deref()).await?);
        }
        let seen = std::mem::take(&mut *minute.lock().unwrap_or_else(|p| p.into_inner()));
        let db: u64 = ["mongars.db", "mongars.db-wal", "mongars.db-shm"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum();
        let row = Row::median(m as f64, &readings);
        println!(
            "{:>6.1} {:>8} {:>7} {:>8.2} {:>8.2} {:>9.1} {:>9.1} {:>9.1} {:>8.1} {:>5} {:>9.2}",
            m as f64 * args.interval_secs / 60.0,
            seen.latencies.len(),
            seen.errors,
            pct(&seen.latencies, 50.0),
            pct(&seen.latencies, 99.0),
            row.rss_kib / 1024.0,
            row.anon_kib / 1024.0,
            row.heap_kib / 1024.0,
            row.sqlite_kib / 1024.0,
            row.fds,
            db as f64 / 1048576.0
        );
        rows.push(row);
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = w.await;
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    // The first fifth (at least one row) is warm-up: caches and pools fill.
    let skip = (rows.len() / 5).max(1);
    let after = &rows[skip.min(rows.len())..];
    if after.len() < 2 {
        bail!("too short to fit a trend: run for more minutes");
    }
    let per_minute = 60.0 / args.interval_secs;
    let rss = slope(after.iter().map(|r| (r.at, r.rss_kib)));
    let fds = slope(after.iter().map(|r| (r.at, r.fds)));
    let anon = slope(after.iter().map(|r| (r.at, r.anon_kib)));
    let heap = slope(after.iter().map(|r| (r.at, r.heap_kib)));
    let sqlite = slope(after.iter().map(|r| (r.at, r.sqlite_kib)));
    println!(
        "after warm-up ({} rows of {} s): RSS {} ({:+.3}% of {:.1} MiB), descriptors {} (mean {:.1})",
        after.len(),
        args.interval_secs,
        rss.describe(per_minute, "KiB"),
        100.0 * rss.slope * per_minute / rss.mean,
        rss.mean / 1024.0,
        fds.describe(per_minute, ""),
        fds.mean
    );
    println!(
        "  anonymous memory {}; bytes the C heap has handed out {} (mean {:.1} MiB), SQLite's share {} (mean {:.1} MiB)",
        anon.describe(per_minute, "KiB"),
        heap.describe(per_minute, "KiB"),
        heap.mean / 1024.0,
        sqlite.describe(per_minute, "KiB"),
        sqlite.mean / 1024.0,
    );
    let verdict = |t: &Trend| {
        if t.holds_zero() {
            "indistinguishable from zero"
        } else if t.slope > 0.0 {
            "RISING"
        } else {
            "falling"
        }
    };
    println!(
        "trend: RSS {}, descriptors {}",
        verdict(&rss),
        verdict(&fds)
    );
    Ok(0)
}

/// One row of the soak: minute, memory in KiB, descriptors.
struct Row {
    at: f64,
    rss_kib: f64,
    anon_kib: f64,
    heap_kib: f64,
    sqlite_kib: f64,
    fds: f64,
}

impl Row {
    /// Each figure's median over the row's readings: a job that runs for a
    /// few seconds (the purge, say) at the instant of one reading is not
    /// read as the minute's level.
    fn median(at: f64, readings: &[Row]) -> Row {
        let of = |f: fn(&Row) -> f64| {
            let mut v: Vec<f64> = readings.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        };
        Row {
            at,
            rss_kib: of(|r| r.rss_kib),
            anon_kib: of(|r| r.anon_kib),
            heap_kib: of(|r| r.heap_kib),
            sqlite_kib: of(|r| r.sqlite_kib),
            fds: of(|r| r.fds),
        }
    }
}

/// One reading of the server: RSS and descriptors from `/proc`, the rest
/// from its own `/metrics` (zero without a token).
async fn read(
    pid: u32,
    http: &reqwest::Client,
    base: &str,
    token: Option<&str>,
) -> anyhow::Result<Row> {
    let rss = rss_kib(pid, "VmRSS:").context("server gone")? as f64;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as f64;
    let own = match token {
        Some(token) => own_figures(http, base, token).await.unwrap_or_default(),
        None => Own::default(),
    };
    Ok(Row {
        at: 0.0,
        rss_kib: rss,
        anon_kib: own.anon / 1024.0,
        heap_kib: own.heap / 1024.0,
        sqlite_kib: own.sqlite / 1024.0,
        fds,
    })
}

/// What the server says of its own memory, in bytes.
#[derive(Default)]
struct Own {
    /// Resident anonymous memory: heap, stacks, the model's buffers.
    anon: f64,
    /// Bytes the C heap has handed out (allocated and not yet freed).
    heap: f64,
    /// SQLite's share of those.
    sqlite: f64,
}

/// [`Own`] from the server's `/metrics`.
async fn own_figures(http: &reqwest::Client, base: &str, admin: &str) -> Option<Own> {
    let text = http
        .get(format!("{base}/metrics"))
        .bearer_auth(admin)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some(Own {
        anon: value("mongars_process_resident_bytes{kind=\"anon\"} ")?,
        heap: value("mongars_process_heap_bytes{state=\"in_use\"} ").unwrap_or(0.0),
        sqlite: value("mongars_sqlite_heap_bytes ").unwrap_or(0.0),
    })
}

/// One user's loop: a drawn action after another until `stop`.
async fn work(
    mut c: Client,
    seed: u64,
    minute: Arc<Mutex<Minute>>,
    stop: Arc<AtomicBool>,
    turn: Arc<AtomicUsize>,
) {
    let mut draw = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut done = 0usize;
    while !stop.load(Ordering::SeqCst) {
        done += 1;
        if c.rotate > 0 && done.is_multiple_of(c.rotate) {
            // Another member of the team: what the server keeps per user
            // (caches, indexes) must stay bounded as users come and go.
            let name = format!("{}-{}", c.name.split('-').next().unwrap_or("u"), done);
            if let Ok(t) = accounts::register(&c.http, &c.base, &c.admin, &name).await {
                c.name = name;
                c.token = t;
            }
        }
        draw ^= draw << 13;
        draw ^= draw >> 7;
        draw ^= draw << 17;
        let n = turn.fetch_add(1, Ordering::Relaxed);
        let t = Instant::now();
        let outcome = match draw % 20 {
            0..=6 => chat_http(&c, n).await,
            7..=9 => chat_ws(&c, n).await,
            10..=11 => accounts::login(&c.http, &c.base, &c.name).await.map(|_| ()),
            12..=14 => memory_edits(&c, n).await,
            _ => reads(&c).await,
        };
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let mut m = minute.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(()) => m.latencies.push(ms),
            Err(_) => m.errors += 1,
        }
    }
}

async fn ok(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        bail!("{status}");
    }
    Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn chat_http(c: &Client, n: usize) -> anyhow::Result<()> {
    let message = format!(
        "Note number {n}: my favourite colour today is shade {}.",
        n % 17
    );
    ok(c.http
        .post(format!("{}/api/v1/conversation/chat", c.base))
        .bearer_auth(&c.token)
        .json(&json!({ "message": message, "session_id": format!("s{}", n % 3) }))
        .send()
        .await?)
    .await
    .map(|_| ())
}

async fn chat_ws(c: &Client, n: usize) -> anyhow::Result<()> {
    let mut socket: Socket = open(&c.http, &c.base, &c.addr, &c.token).await?;
    let frame = json!({"id": n.to_string(), "type": "chat.send",
        "payload": {"message": format!("Socket question {n}?")}});
    socket.send(Message::text(frame.to_string())).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, socket.next())
            .await
            .context("no reply on the socket")?
            .context("socket closed")??;
        if let Message::Text(text) = msg {
            if text.contains("ai_model.response_complete") {
                break;
            }
            if text.contains("\"error\"") {
                bail!("socket chat refused: {text}");
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(())
}

async fn memory_edits(c: &Client, n: usize) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/memories", c.base);
    let made = ok(c
        .http
        .post(&url)
        .bearer_auth(&c.token)
        .json(&json!({"text": format!("I planted tree number {n} in the garden.")}))
        .send()
        .await?)
    .await?;
    let id = made["id"].as_str().context("no memory id")?.to_string();
    ok(c.http
        .patch(format!("{url}/{id}"))
        .bearer_auth(&c.token)
        .json(&json!({"text": format!("I planted tree number {n} in the orchard.")}))
        .send()
        .await?)
    .await?;
    // Every other one is kept, so that the memories grow as a user's do.
    if n.is_multiple_of(2) {
        let resp = c
            .http
            .delete(format!("{url}/{id}"))
            .bearer_auth(&c.token)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("{}", resp.status());
        }
    }
    Ok(())
}

async fn reads(c: &Client) -> anyhow::Result<()> {
    ok(c.http
        .get(format!("{}/api/v1/conversation/history?limit=20", c.base))
        .bearer_auth(&c.token)
        .send()
        .await?)
    .await?;
    ok(c.http
        .get(format!(
            "{}/api/v1/memories?q=garden%20trees&limit=5",
            c.base
        ))
        .bearer_auth(&c.token)
        .send()
        .await?)
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::Row;

    fn reading(rss_kib: f64, fds: f64) -> Row {
        Row {
            at: 0.0,
            rss_kib,
            anon_kib: rss_kib / 2.0,
            heap_kib: 0.0,
            sqlite_kib: 0.0,
            fds,
        }
    }

    #[test]
    fn a_row_is_the_median_of_its_readings_so_one_burst_is_not_its_level() {
        // Six readings, one taken while a job held 3 MiB more for a moment.
        let r: Vec<Row> = [100.0, 101.0, 3172.0, 100.0, 99.0, 102.0]
            .iter()
            .map(|&kib| reading(kib + 160_000.0, 33.0))
            .collect();
        let row = Row::median(7.0, &r);
        assert_eq!(row.at, 7.0);
        assert_eq!(row.rss_kib, 160_100.5);
        assert_eq!(row.anon_kib, 80_050.25);
        assert_eq!(row.fds, 33.0);
        // An odd count takes the middle one; a single reading is itself.
        assert_eq!(Row::median(1.0, &r[..5]).rss_kib, 160_100.0);
        assert_eq!(Row::median(1.0, &r[2..3]).rss_kib, 163_172.0);
    }
}
