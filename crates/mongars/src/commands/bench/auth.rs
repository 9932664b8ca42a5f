//! `mongars bench auth`: figures for operators and developers, measured on a
//! real `mongars serve` child process with the configured argon2 parameters.
//!
//! Reports time from process start to `/ready` = 200, idle and peak RSS,
//! `POST /token` throughput and latency next to the raw argon2 verify rate on
//! the same cores (the baseline), `/healthz` latency while logins saturate the
//! CPU, and the unknown-user / wrong-password timing ratio.

use super::args::BenchArgs;
use super::pct;
use anyhow::{Context, bail};
use mongars_config::Settings;
use mongars_core::auth::{HashParams, PasswordHasher};
use mongars_core::domain::Password;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub async fn run(settings: Settings, args: BenchArgs) -> anyhow::Result<i32> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let concurrency = args.concurrency.unwrap_or(cores * 2).max(1);
    let secs = args.seconds.max(1);
    let a = &settings.auth;
    let params = HashParams {
        memory_kib: a.argon2_memory_kib,
        iterations: a.argon2_iterations,
        parallelism: a.argon2_parallelism,
    };
    println!(
        "argon2id m={} KiB t={} p={}; {cores} cores; {concurrency} clients; {secs} s per phase",
        params.memory_kib, params.iterations, params.parallelism
    );

    let data = std::env::temp_dir().join(format!("mongars-bench-{}", std::process::id()));
    std::fs::create_dir_all(&data)?;
    let started = Instant::now();
    let mut server = Server::spawn(&data, &settings)?;
    let client = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let ready = wait_ready(&client, &base, started).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(server.child.id(), "VmRSS");

    let resp = client
        .post(format!("{base}/api/v1/auth/bootstrap-admin"))
        .json(&serde_json::json!({"username": "bench", "password": "bench-password"}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("cannot create the bench account: {}", resp.status());
    }

    let raw = raw_argon2_rate(params, secs).await?;
    let (logins, latencies, health) = login_load(&client, &base, concurrency, secs).await;
    let (unknown_ms, wrong_ms) = failure_timing(&client, &base).await;
    let peak_rss = rss_kib(server.child.id(), "VmHWM");
    server.stop();
    let _ = std::fs::remove_dir_all(&data);

    let rate = logins as f64 / secs as f64;
    println!();
    println!(
        "{:<44} {:>12}",
        "start -> /ready 200",
        format!("{:.0} ms", ready.as_secs_f64() * 1e3)
    );
    println!("{:<44} {:>12}", "idle RSS after start", kib(idle_rss));
    println!("{:<44} {:>12}", "peak RSS after login load", kib(peak_rss));
    println!(
        "{:<44} {:>12}",
        "raw argon2 verify, one thread/core (baseline)",
        format!("{raw:.1} /s")
    );
    println!("{:<44} {:>12}", "POST /token", format!("{rate:.1} /s"));
    println!(
        "{:<44} {:>12}",
        "  ratio to baseline",
        format!("{:.2}", rate / raw)
    );
    println!(
        "{:<44} {:>12}",
        "  latency p50 / p99",
        format!(
            "{:.0} / {:.0} ms",
            pct(&latencies, 50.0),
            pct(&latencies, 99.0)
        )
    );
    println!(
        "{:<44} {:>12}",
        "GET /healthz during login load p50 / p99",
        format!("{:.1} / {:.1} ms", pct(&health, 50.0), pct(&health, 99.0))
    );
    println!(
        "{:<44} {:>12}",
        "unknown user / wrong password time",
        format!("{:.2}", unknown_ms / wrong_ms)
    );
    Ok(0)
}

/// `mongars serve` as a child process on a fresh SQLite database.
pub(crate) struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn spawn(data: &std::path::Path, s: &Settings) -> anyhow::Result<Self> {
        Self::spawn_with(data, s, &[])
    }

    /// With extra `MONGARS_*` variables.
    pub fn spawn_with(
        data: &std::path::Path,
        s: &Settings,
        env: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the mongars executable")?;
        let mut child = Command::new(exe)
            .arg("serve")
            .env("MONGARS_DATA_DIR", data)
            .env("MONGARS_DATABASE__URL", "")
            .env("MONGARS_SERVER__HOST", "127.0.0.1")
            .env("MONGARS_SERVER__PORT", "0")
            .env("MONGARS_LOGGING__LEVEL", "warn")
            .env(
                "MONGARS_AUTH__ARGON2_MEMORY_KIB",
                s.auth.argon2_memory_kib.to_string(),
            )
            .env(
                "MONGARS_AUTH__ARGON2_ITERATIONS",
                s.auth.argon2_iterations.to_string(),
            )
            .env(
                "MONGARS_AUTH__ARGON2_PARALLELISM",
                s.auth.argon2_parallelism.to_string(),
            )
            .env("MONGARS_AUTH__THROTTLE__MAX_FAILURES_PER_USER", "1000000")
            .env(
                "MONGARS_AUTH__THROTTLE__MAX_FAILURES_PER_ADDRESS",
                "1000000",
            )
            // Last, so that the caller's variables win.
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start mongars serve")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("no stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .filter(|a| a.contains(':'))
            .with_context(|| format!("unexpected first line from serve: {line:?}"))?
            .to_string();
        Ok(Self { child, addr })
    }

    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

/// A bench that fails half-way does not leave its server running.
impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    started: Instant,
) -> anyhow::Result<Duration> {
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status().is_success()
        {
            return Ok(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("server not ready after 60 s")
}

/// The argon2 crate alone: one plain thread per core verifying in a loop,
/// allocating its own memory as the crate does by default.
async fn raw_argon2_rate(params: HashParams, secs: u64) -> anyhow::Result<f64> {
    use argon2::{PasswordHash, PasswordVerifier};
    let hasher = PasswordHasher::new(params, 1).await?;
    let stored = hasher.hash(&Password::for_login("bench-password")?).await?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let stored = stored.clone();
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&stored).expect("own hash parses");
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if argon2::Argon2::default()
                        .verify_password(b"bench-password", &parsed)
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = tokio::task::spawn_blocking(move || {
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    })
    .await?;
    Ok(total as f64 / secs as f64)
}

async fn login_load(
    client: &reqwest::Client,
    base: &str,
    concurrency: usize,
    secs: u64,
) -> (u64, Vec<f64>, Vec<f64>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let done = Arc::new(AtomicBool::new(false));
    let health = {
        let (client, url, done) = (client.clone(), format!("{base}/healthz"), done.clone());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let t = Instant::now();
                if client.get(&url).send().await.is_ok() {
                    lat.push(t.elapsed().as_secs_f64() * 1e3);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            lat
        })
    };
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/token"));
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let ok = client
                        .post(&url)
                        .form(&[("username", "bench"), ("password", "bench-password")])
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    if ok {
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap_or_default());
    }
    done.store(true, Ordering::Relaxed);
    let health = health.await.unwrap_or_default();
    (latencies.len() as u64, latencies, health)
}

/// Mean time of failed logins for an unknown user and for a wrong password.
async fn failure_timing(client: &reqwest::Client, base: &str) -> (f64, f64) {
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for i in 0..40 {
        for (name, into) in [
            (format!("ghost{i}"), &mut unknown),
            ("bench".to_string(), &mut wrong),
        ] {
            let t = Instant::now();
            let _ = client
                .post(format!("{base}/token"))
                .form(&[
                    ("username", name.as_str()),
                    ("password", "not-the-password"),
                ])
                .send()
                .await;
            into.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    (pct(&unknown, 50.0), pct(&wrong, 50.0))
}

pub(crate) fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn kib(v: Option<u64>) -> String {
    v.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}
