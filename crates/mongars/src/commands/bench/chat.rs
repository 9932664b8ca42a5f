//! `mongars bench chat`: chats per second through the whole pipeline over
//! real HTTP. A `mongars serve` child process talks to an OpenAI-compatible
//! fake that answers at once (a second child process, so that its CPU is
//! not the server's), and this process drives many users' chats over a
//! fixed number of connections. One table: SQLite and PostgreSQL, memory
//! on and off, fresh users and users with stored turns, 4, 16 and 64
//! connections; requests/s, p50, p99, and the server's CPU by thread. The
//! embedder's settings of `-c` (precision, batch size, cache, longest
//! input) carry over to the measured server.
//!
//! The table's cells run minutes apart, so on a shared machine a
//! neighbour's load can move one cell and not the next. Each server's part
//! therefore ends with rounds that alternate, at 4 connections, a cohort of
//! new users with the users holding the most stored turns; the median of
//! the rounds' ratios is the figure to compare stored history against fresh.

use super::accounts;
use super::args::ChatBenchArgs;
use super::auth::{Server, wait_ready};
use super::pct;
use anyhow::{Context, bail};
use mongars_config::Settings;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const CONNECTIONS: [usize; 3] = [4, 16, 64];

/// One measured cell of the table.
struct Cell {
    rate: f64,
    p50: f64,
    p99: f64,
    errors: usize,
    /// Server CPU over the cell, in cores, by thread name.
    cpu: Vec<(String, f64)>,
}

pub async fn run(settings: Settings, args: ChatBenchArgs) -> anyhow::Result<i32> {
    let fake = FakeBackend::spawn()?;
    let mut databases = vec![("SQLite", None)];
    match &args.postgres {
        Some(url) => databases.push(("PostgreSQL", Some(url.clone()))),
        None => println!("(PostgreSQL rows: pass --postgres postgres://... to measure them)"),
    }
    println!(
        "{} users, {} chats per cell, instant fake OpenAI-compatible backend at {}",
        args.users, args.requests, fake.url
    );
    println!(
        "{:<11} {:<7} {:>6} {:>6} {:>9} {:>8} {:>8} {:>7}  busiest server threads (cores)",
        "database", "memory", "stored", "conns", "chats/s", "p50 ms", "p99 ms", "cpu"
    );
    for (name, url) in &databases {
        for memory in [true, false] {
            if args
                .memory
                .as_deref()
                .is_some_and(|m| (m == "on") != memory)
            {
                continue;
            }
            let server = BenchServer::start(
                &settings,
                &fake.url,
                url.as_deref(),
                memory,
                &args.server_log,
            )
            .await?;
            let tokens = server.users("user", args.users).await?;
            let per_cell = u32::try_from(args.requests / args.users.max(1)).unwrap_or(u32::MAX);
            // Turns every user has stored, counting those the measured
            // chats themselves add (users take turns, so evenly).
            let mut turns = 0u32;
            for stored in std::iter::once(0u32).chain(args.turns.iter().copied()) {
                if stored > turns {
                    server.chat_all(&tokens, stored - turns, 8).await?;
                    turns = stored;
                }
                for conns in CONNECTIONS {
                    let cell = server.measure(&tokens, conns, args.requests).await?;
                    print_row(name, memory, turns, conns, &cell);
                    turns += per_cell;
                }
            }
            if turns > 0 && args.rounds > 0 {
                alternate(&server, &tokens, turns, per_cell, &args).await?;
            }
            server.stop().await;
        }
    }
    Ok(0)
}

/// Rounds at 4 connections, each measuring a cohort of new users and the
/// `stored` users (`turns` stored turns each) one right after the other,
/// the order swapped every round; one line per round, then the median ratio.
/// Each measurement adds `per_cell` turns to every stored user.
async fn alternate(
    server: &BenchServer,
    stored: &[String],
    mut turns: u32,
    per_cell: u32,
    args: &ChatBenchArgs,
) -> anyhow::Result<()> {
    const CONNS: usize = 4;
    println!(
        "  alternating at {CONNS} connections: {} new users against the {} with {turns}+ stored turns",
        args.users,
        stored.len()
    );
    let mut ratios = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let fresh = server.users(&format!("round{round}-"), args.users).await?;
        let swapped = round % 2 == 1;
        let (first, second) = if swapped {
            (stored, &fresh[..])
        } else {
            (&fresh[..], stored)
        };
        let first = server.measure(first, CONNS, args.requests).await?;
        let second = server.measure(second, CONNS, args.requests).await?;
        let (new, old) = if swapped {
            (second, first)
        } else {
            (first, second)
        };
        let ratio = old.rate / new.rate;
        ratios.push(ratio);
        println!(
            "  round {}: new {:.0} chats/s (p50 {:.1} ms), stored {turns} turns {:.0} chats/s (p50 {:.1} ms), stored/new {ratio:.3}{}",
            round + 1,
            new.rate,
            new.p50,
            old.rate,
            old.p50,
            if new.errors + old.errors > 0 {
                format!("  ({} errors)", new.errors + old.errors)
            } else {
                String::new()
            }
        );
        turns += per_cell;
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "  stored/new over {} rounds: median {:.3}, lowest {:.3}, highest {:.3}",
        ratios.len(),
        ratios[ratios.len() / 2],
        ratios[0],
        ratios[ratios.len() - 1]
    );
    Ok(())
}

fn print_row(db: &str, memory: bool, turns: u32, conns: usize, c: &Cell) {
    let total: f64 = c.cpu.iter().map(|(_, v)| v).sum();
    let busiest: Vec<String> = c
        .cpu
        .iter()
        .take(4)
        .map(|(n, v)| format!("{n} {v:.2}"))
        .collect();
    println!(
        "{db:<11} {:<7} {turns:>6} {conns:>6} {:>9.0} {:>8.1} {:>8.1} {total:>7.2}  {}{}",
        if memory { "on" } else { "off" },
        c.rate,
        c.p50,
        c.p99,
        busiest.join(", "),
        if c.errors > 0 {
            format!("  ({} errors)", c.errors)
        } else {
            String::new()
        }
    );
}

/// The fake backend as a child process (`mongars bench fake-openai`).
pub(crate) struct FakeBackend {
    child: std::process::Child,
    pub url: String,
}

impl FakeBackend {
    pub fn spawn() -> anyhow::Result<Self> {
        use std::io::BufRead;
        let exe = std::env::current_exe().context("cannot find the mongars executable")?;
        let mut child = std::process::Command::new(exe)
            .args(["bench", "fake-openai"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start the fake backend")?;
        let mut line = String::new();
        let out = child.stdout.take().context("no stdout")?;
        std::io::BufReader::new(out).read_line(&mut line)?;
        let url = line.trim().to_string();
        if !url.starts_with("http://") {
            bail!("unexpected first line from the fake backend: {line:?}");
        }
        Ok(Self { child, url })
    }
}

impl Drop for FakeBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mongars bench fake-openai`: answer every chat completion at once with a
/// two-event stream, until killed. Prints its URL first.
pub async fn fake_openai() -> anyhow::Result<i32> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}", listener.local_addr()?);
    axum::serve(listener, super::router::fake_app()).await?;
    Ok(0)
}

struct BenchServer {
    server: Server,
    base: String,
    client: reqwest::Client,
    dir: std::path::PathBuf,
    postgres: Option<(String, String)>,
    /// The bench administrator's token, who registers the users.
    admin: String,
    /// Messages sent so far: each chat's text is numbered across the whole
    /// run, so that no cell repeats an earlier one's texts and none is
    /// answered from the server's cache of embeddings (from 10,000 on, so
    /// that they have as many digits in any run of fewer than 90,000).
    sent: AtomicUsize,
}

impl BenchServer {
    async fn start(
        settings: &Settings,
        fake: &str,
        postgres: Option<&str>,
        memory: bool,
        log: &str,
    ) -> anyhow::Result<Self> {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "mongars-bench-chat-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("bench.toml");
        // The embedder as the caller's settings (`-c`) have it: the server
        // reads only this file.
        let e = &settings.embeddings;
        let precision = serde_json::to_value(e.precision)?;
        let precision = precision.as_str().unwrap_or("f16");
        std::fs::write(
            &config,
            format!(
                "[llm]\nprofile = \"bench\"\n\
                 [llm.profiles.bench.general]\nbackends = [\"openai\"]\nmax_tokens = 16\n\
                 [llm.profiles.bench.coding]\nbackends = [\"openai\"]\nmax_tokens = 16\n\
                 [llm.backends.openai]\nurl = \"{fake}\"\nmodel = \"fake\"\nretries = 0\n\
                 [llm.cache]\nenabled = false\n\
                 [memory]\nenabled = {memory}\n\
                 [embeddings]\nprecision = \"{precision}\"\nbatch_size = {}\n\
                 cache_entries = {}\nmax_tokens = {}\n\
                 [conversation]\nrate_limit_per_minute = 1000000\nrate_limit_burst = 1000000\n",
                e.batch_size, e.cache_entries, e.max_tokens
            ),
        )?;
        let mut env = vec![
            ("MONGARS_CONFIG", config.display().to_string()),
            ("MONGARS_AUTH__ARGON2_MEMORY_KIB", "8192".into()),
            ("MONGARS_AUTH__ARGON2_ITERATIONS", "1".into()),
            ("MONGARS_LOGGING__LEVEL", log.to_string()),
        ];
        // A new database on the given server for every configuration.
        let postgres = match postgres {
            Some(admin) => Some((
                mongars_store::testing::create_postgres_database(admin).await,
                admin.to_string(),
            )),
            None => None,
        };
        if let Some((url, _)) = &postgres {
            env.push(("MONGARS_DATABASE__URL", url.clone()));
        }
        let mut quick = settings.clone();
        quick.auth.argon2_memory_kib = 8192;
        quick.auth.argon2_iterations = 1;
        let started = Instant::now();
        let server = Server::spawn_with(&dir, &quick, &env)?;
        let base = format!("http://{}", server.addr);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()?;
        wait_ready(&client, &base, started).await?;
        let admin = accounts::bootstrap_admin(&client, &base, "benchadmin").await?;
        Ok(Self {
            server,
            base,
            client,
            dir,
            postgres,
            admin,
            sent: AtomicUsize::new(0),
        })
    }

    /// Register `n` users named `{prefix}{i}` and log each in; their bearer
    /// tokens.
    async fn users(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(n);
        for i in 0..n {
            let name = format!("{prefix}{i}");
            tokens.push(accounts::register(&self.client, &self.base, &self.admin, &name).await?);
        }
        Ok(tokens)
    }

    /// `turns` more chats for every user, `conns` at a time.
    async fn chat_all(&self, tokens: &[String], turns: u32, conns: usize) -> anyhow::Result<()> {
        let total = tokens.len() * turns as usize;
        self.drive(tokens, conns, total).await.map(|_| ())
    }

    async fn measure(
        &self,
        tokens: &[String],
        conns: usize,
        requests: usize,
    ) -> anyhow::Result<Cell> {
        let before = thread_cpu(self.server.child.id());
        let started = Instant::now();
        let (latencies, errors) = self.drive(tokens, conns, requests).await?;
        let wall = started.elapsed().as_secs_f64();
        let after = thread_cpu(self.server.child.id());
        let mut cpu: Vec<(String, f64)> = after
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    (t - before.get(name).copied().unwrap_or(0.0)) / wall,
                )
            })
            .filter(|(_, v)| *v > 0.005)
            .collect();
        cpu.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Cell {
            rate: latencies.len() as f64 / wall,
            p50: pct(&latencies, 50.0),
            p99: pct(&latencies, 99.0),
            errors,
            cpu,
        })
    }

    /// `total` chats over `conns` connections, users in turn; latencies of
    /// the successful ones (ms) and the count of failures.
    async fn drive(
        &self,
        tokens: &[String],
        conns: usize,
        total: usize,
    ) -> anyhow::Result<(Vec<f64>, usize)> {
        let next = Arc::new(AtomicUsize::new(0));
        let first = self.sent.fetch_add(total, Ordering::Relaxed);
        let tokens = Arc::new(tokens.to_vec());
        let workers: Vec<_> = (0..conns)
            .map(|_| {
                let (next, tokens, client) = (next.clone(), tokens.clone(), self.client.clone());
                let url = format!("{}/api/v1/conversation/chat", self.base);
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (Vec::new(), 0usize);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return (ok, failed);
                        }
                        let token = &tokens[i % tokens.len()];
                        let t = Instant::now();
                        let sent = client
                            .post(&url)
                            .bearer_auth(token)
                            .json(&json!({
                                "message": format!(
                                    "Question {}: what should I cook tonight?",
                                    10_000 + first + i
                                ),
                                "session_id": "bench"
                            }))
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status().is_success() => {
                                let _ = r.bytes().await;
                                ok.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                            _ => failed += 1,
                        }
                    }
                })
            })
            .collect();
        let (mut latencies, mut errors) = (Vec::with_capacity(total), 0);
        for w in workers {
            let (ok, failed) = w.await?;
            latencies.extend(ok);
            errors += failed;
        }
        Ok((latencies, errors))
    }

    async fn stop(mut self) {
        self.server.stop();
        if let Some((url, admin)) = &self.postgres {
            mongars_store::testing::drop_postgres_database(admin, url).await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU seconds used so far by each thread of `pid`, summed by thread name
/// (numbered pool threads counted together).
fn thread_cpu(pid: u32) -> BTreeMap<String, f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut out = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (name) state ..." where the name may hold spaces.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let used = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of stat, 12 and 13 here.
        *out.entry(name.to_string()).or_insert(0.0) += (used(11) + used(12)) / ticks;
    }
    out
}
