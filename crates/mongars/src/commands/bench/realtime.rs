//! `mongars bench realtime`: idle WebSocket connections held by one server
//! (its RSS before and after, per connection), and event fan-out latency
//! from a chat's completion (the event's timestamp) to delivery on a
//! socket, in process and, with `--redis`, through Redis.

use super::args::RealtimeBenchArgs;
use super::auth::{Server, rss_kib, wait_ready};
use super::pct;
use anyhow::{Context, bail};
use futures_util::StreamExt;
use mongars_config::Settings;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn run(settings: Settings, args: RealtimeBenchArgs) -> anyhow::Result<i32> {
    let data = std::env::temp_dir().join(format!("mongars-bench-ws-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let client = reqwest::Client::new();

    let mut server = start(&data.join("local"), &settings, None)?;
    let base = format!("http://{}", server.addr);
    wait_ready(&client, &base, Instant::now()).await?;
    let token = login(&client, &base).await?;
    let before = rss_kib(server.child.id(), "VmRSS").unwrap_or(0);
    let started = Instant::now();
    let mut idle = Vec::with_capacity(args.connections);
    while idle.len() < args.connections {
        let batch = (args.connections - idle.len()).min(64);
        let opened = futures_util::future::join_all(
            (0..batch).map(|_| open(&client, &base, &server.addr, &token)),
        )
        .await;
        for socket in opened {
            idle.push(
                socket.context(
                    "opening sockets failed (raise the open-files limit with `ulimit -n`)",
                )?,
            );
        }
    }
    let opening = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(server.child.id(), "VmRSS").unwrap_or(0);
    let open_now = gauge(&client, &base, &token, "mongars_ws_connections").await?;
    println!(
        "{:<48} {:>14}",
        "idle sockets held",
        format!("{open_now:.0}")
    );
    println!(
        "{:<48} {:>14}",
        "time to open them (tickets + handshakes)",
        format!("{:.1} s", opening.as_secs_f64())
    );
    println!("{:<48} {:>14}", "server RSS before", mib(before));
    println!(
        "{:<48} {:>14}",
        "server RSS with the idle sockets",
        mib(after)
    );
    println!(
        "{:<48} {:>14}",
        "memory per idle socket",
        format!(
            "{:.1} KiB",
            after.saturating_sub(before) as f64 / args.connections as f64
        )
    );
    // Another user's turns: the idle sockets are the bench user's and must
    // not hear them, or the figure would be that of a 5,000-tab user.
    let other = second_user(&client, &base, &token).await?;
    let local = fan_out(&client, &base, &server.addr, &other, args.events).await?;
    report("fan-out, in process (with the idle sockets)", &local);
    drop(idle);
    server.stop();

    if let Some(url) = &args.redis {
        let mut server = start(&data.join("redis"), &settings, Some(url))?;
        let base = format!("http://{}", server.addr);
        wait_ready(&client, &base, Instant::now()).await?;
        let token = login(&client, &base).await?;
        let redis = fan_out(&client, &base, &server.addr, &token, args.events).await?;
        report("fan-out, through Redis", &redis);
        println!(
            "{:<48} {:>14}",
            "  Redis / in process, p50",
            format!("{:.2}", pct(&redis, 50.0) / pct(&local, 50.0))
        );
        server.stop();
    }
    let _ = std::fs::remove_dir_all(&data);
    Ok(0)
}

fn start(
    dir: &std::path::Path,
    settings: &Settings,
    redis: Option<&str>,
) -> anyhow::Result<Server> {
    std::fs::create_dir_all(dir)?;
    let mut env = vec![
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "bench".to_string()),
        (
            "MONGARS_BOOTSTRAP__ADMIN_PASSWORD",
            "bench-password".to_string(),
        ),
        (
            "MONGARS_REALTIME__MAX_SOCKETS_PER_USER",
            "1000000".to_string(),
        ),
        ("MONGARS_MEMORY__ENABLED", "false".to_string()),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__MAX_TOKENS",
            "4".to_string(),
        ),
        (
            "MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE",
            "1000000".to_string(),
        ),
        (
            "MONGARS_CONVERSATION__RATE_LIMIT_BURST",
            "1000000".to_string(),
        ),
    ];
    if let Some(url) = redis {
        env.push(("MONGARS_REDIS__URL", url.to_string()));
        env.push((
            "MONGARS_REDIS__KEY_PREFIX",
            format!("bench{}", std::process::id()),
        ));
    }
    Server::spawn_with(dir, settings, &env)
}

async fn second_user(client: &reqwest::Client, base: &str, admin: &str) -> anyhow::Result<String> {
    client
        .post(format!("{base}/api/v1/user/register"))
        .bearer_auth(admin)
        .json(&json!({"username": "listener", "password": "bench-password"}))
        .send()
        .await?
        .error_for_status()?;
    login_as(client, base, "listener").await
}

async fn login(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    login_as(client, base, "bench").await
}

async fn login_as(client: &reqwest::Client, base: &str, user: &str) -> anyhow::Result<String> {
    let r: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    r["access_token"]
        .as_str()
        .map(str::to_string)
        .context("login failed")
}

/// A ticket, a handshake, and the greeting frames read.
pub(crate) async fn open(
    client: &reqwest::Client,
    base: &str,
    addr: &str,
    token: &str,
) -> anyhow::Result<Socket> {
    let r: Value = client
        .post(format!("{base}/api/v1/auth/ws/ticket"))
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let ticket = r["ticket"].as_str().context("no ticket")?;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws/chat/?t={ticket}")).await?;
    for _ in 0..2 {
        socket
            .next()
            .await
            .context("socket closed during greeting")??;
    }
    Ok(socket)
}

/// Chats one after another; for each, the delay from the `chat.message`
/// event's timestamp to its arrival here, in milliseconds.
async fn fan_out(
    client: &reqwest::Client,
    base: &str,
    addr: &str,
    token: &str,
    events: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut socket = open(client, base, addr, token).await?;
    let mut delays = Vec::with_capacity(events);
    for i in 0..events {
        let chat = client
            .post(format!("{base}/api/v1/conversation/chat"))
            .bearer_auth(token)
            .json(&json!({"message": format!("Say hi {i}")}))
            .send();
        let (resp, delay) = tokio::join!(chat, next_message(&mut socket));
        if !resp?.status().is_success() {
            bail!("chat failed");
        }
        delays.push(delay?);
    }
    Ok(delays)
}

async fn next_message(socket: &mut Socket) -> anyhow::Result<f64> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .context("no event within 60 s")?
            .context("socket closed")??;
        if let Message::Text(t) = msg {
            let frame: Value = serde_json::from_str(t.as_str())?;
            if frame["type"] == "chat.message" {
                let now = chrono::Utc::now().timestamp_micros() as f64 / 1e6;
                return Ok((now - frame["ts"].as_f64().unwrap_or(now)) * 1e3);
            }
        }
    }
}

async fn gauge(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .context("gauge missing from /metrics")
}

fn report(label: &str, delays: &[f64]) {
    println!(
        "{:<48} {:>14}",
        format!("{label} p50 / p99"),
        format!("{:.2} / {:.2} ms", pct(delays, 50.0), pct(delays, 99.0))
    );
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
