//! The Compose stack on this machine: PostgreSQL, Redis and nginx built from
//! Debian's packages with the Dockerfiles beside `compose.yaml`, the image
//! of this build twice behind the proxy, secrets from files. Chats go
//! through the proxy while one replica is stopped and started again: every
//! accepted turn is kept, and sockets reconnect to the replica still up.

use super::docker::{Cleanup, available, build_image, docker, login, output, repo, unique};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Build the images the stack runs; (variable, tag) pairs for compose.
fn images(run: &str, cleanup: &mut Cleanup) -> Vec<(String, String)> {
    let base = "mongars-base/debian:bookworm-slim";
    let out = output("deploy/base.sh", &[base]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut vars = Vec::new();
    for (var, dir) in [
        ("POSTGRES_IMAGE", "postgres"),
        ("REDIS_IMAGE", "redis"),
        ("PROXY_IMAGE", "proxy"),
    ] {
        let tag = format!("mongars-local/{dir}:15-test");
        let started = Instant::now();
        let base_arg = format!("BASE={base}");
        docker(&[
            "build",
            "-q",
            "--build-arg",
            &base_arg,
            "-t",
            &tag,
            &format!("deploy/compose/{dir}"),
        ]);
        eprintln!("{tag}: {:.0} s", started.elapsed().as_secs_f64());
        vars.push((var.to_string(), tag));
    }
    let tag = format!("{run}:compose-test");
    build_image(&tag);
    cleanup.0.push(Cleanup::image(&tag));
    vars.push(("MONGARS_IMAGE".into(), tag));
    vars
}

struct Stack {
    project: String,
    env: Vec<(String, String)>,
}

impl Stack {
    /// `docker-compose` on this stack's project, file and variables.
    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("docker-compose");
        cmd.args(["-p", &self.project, "-f", "deploy/compose/compose.yaml"])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(repo());
        cmd
    }

    fn compose(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("docker-compose");
        assert!(
            out.status.success(),
            "docker-compose {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "-v", "--remove-orphans", "-t", "5"])
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until(what: &str, within: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !ok().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn chat(client: &reqwest::Client, base: &str, token: &str, message: &str) -> u16 {
    client
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(token)
        .json(&json!({"message": message}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(client: &reqwest::Client, base: &str, token: &str) -> Ws {
    let ticket: Value = client
        .post(format!("{base}/api/v1/auth/ws/ticket"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().expect("a ticket");
    let url = format!("{}/ws/chat/?t={ticket}", base.replacen("http", "ws", 1));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("socket opens");
    ws
}

/// The next event of `kind`, or `None` when the socket closes first.
async fn event(ws: &mut Ws, kind: &str) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a frame within a minute")?;
        match msg {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == kind {
                    return Some(v);
                }
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn two_replicas_behind_the_proxy_lose_no_turn_when_one_stops() {
    if !available() {
        return;
    }
    let run = unique("compose");
    let mut cleanup = Cleanup(Vec::new());
    let secrets = tempfile::tempdir().unwrap();
    let out = output(
        "deploy/compose/make-secrets.sh",
        &[secrets.path().to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin_password = std::fs::read_to_string(secrets.path().join("admin_password")).unwrap();
    let port = free_port();
    let mut env = images(&run, &mut cleanup);
    env.extend([
        (
            "MONGARS_SECRETS_DIR".into(),
            secrets.path().display().to_string(),
        ),
        (
            "MONGARS_MODELS_DIR".into(),
            repo().join("models").display().to_string(),
        ),
        ("PROXY_PORT".into(), port.to_string()),
        ("MONGARS_THREADS".into(), "1".into()),
        ("MONGARS_MEMORY".into(), "false".into()),
    ]);
    let stack = Stack {
        project: run.replace('-', ""),
        env,
    };
    let started = Instant::now();
    stack.compose(&["up", "-d"]);
    let base = format!("http://127.0.0.1:{port}");
    mongars_net::install_crypto();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    wait_until(
        "the stack is ready through the proxy",
        Duration::from_secs(240),
        async || {
            client
                .get(format!("{base}/ready"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        },
    )
    .await;
    eprintln!("stack ready in {:.1} s", started.elapsed().as_secs_f64());
    // Only the proxy publishes a port.
    let published = docker(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={}", stack.project),
        "--format",
        "{{.Names}} {{.Ports}}",
    ]);
    for line in published.lines() {
        assert_eq!(line.contains("->"), line.contains("proxy"), "{published}");
    }

    let token = login(&client, &base, "admin", admin_password.trim()).await;

    // Two sockets: the proxy spreads them over the replicas.
    let mut sockets = vec![
        socket(&client, &base, &token).await,
        socket(&client, &base, &token).await,
    ];
    for ws in &mut sockets {
        assert!(event(ws, "history.snapshot").await.is_some());
    }
    let mut accepted = Vec::new();
    for i in 0..3 {
        let message = format!("Before the stop, question {i}: what is two plus {i}?");
        assert_eq!(chat(&client, &base, &token, &message).await, 200);
        accepted.push(message);
    }

    // The replica holding a socket goes away (SIGTERM, its requests
    // finished): its logs show the sockets it took.
    let logs = |name: &str| {
        let out = output("docker", &["logs", &format!("{}_{name}_1", stack.project)]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let holds_socket = |name: &str| logs(name).contains("/ws/chat/");
    let victim = if holds_socket("mongars-a") {
        "mongars-a"
    } else {
        "mongars-b"
    };
    assert!(holds_socket(victim), "no replica logged a socket");
    // A chat in flight while it stops: finished by the stopping replica (or
    // served by the other), and kept if it was answered.
    let inflight = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let message = "In flight during the stop: what is the capital of Italy?";
            (
                chat(&client, &base, &token, message).await,
                message.to_string(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    stack.compose(&["stop", "-t", "20", victim]);
    let (status, message) = inflight.await.unwrap();
    eprintln!("the chat in flight during the stop: {status}");
    if status == 200 {
        accepted.push(message);
    }
    for i in 0..3 {
        let message = format!("After the stop, question {i}: name a colour.");
        let status = chat(&client, &base, &token, &message).await;
        assert_eq!(
            status,
            200,
            "chat {i} after the stop; proxy:\n{}",
            logs("proxy")
        );
        accepted.push(message);
    }
    // Sockets on the stopped replica were closed; clients reconnect and land
    // on the other, which hears every chat (through Redis).
    let mut live = Vec::new();
    let mut reconnected = 0;
    for mut ws in sockets {
        // Read what was queued: a socket on the stopped replica ends with a
        // close; one on the other stays quiet and open.
        let closed = loop {
            match tokio::time::timeout(Duration::from_millis(1500), ws.next()).await {
                Err(_) => break false,
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => break true,
                Ok(Some(Ok(_))) => {}
            }
        };
        if closed {
            reconnected += 1;
            let mut again = socket(&client, &base, &token).await;
            assert!(
                event(&mut again, "history.snapshot").await.is_some(),
                "reconnected"
            );
            live.push(again);
        } else {
            live.push(ws);
        }
    }
    eprintln!("{reconnected} of 2 sockets were on {victim} and reconnected");
    assert!(
        reconnected >= 1,
        "the stopped replica's sockets stayed open"
    );
    let message = "While one replica is down: is anyone listening?".to_string();
    assert_eq!(chat(&client, &base, &token, &message).await, 200);
    accepted.push(message);
    for ws in &mut live {
        assert!(
            event(ws, "chat.message").await.is_some(),
            "a socket heard the chat"
        );
    }

    // It comes back and serves again.
    stack.compose(&["start", victim]);
    let container = format!("{}_{victim}_1", stack.project);
    wait_until(
        "the replica is healthy again",
        Duration::from_secs(240),
        async || docker(&["inspect", "-f", "{{.State.Health.Status}}", &container]) == "healthy",
    )
    .await;
    for i in 0..2 {
        let message = format!("After the restart, question {i}: say hello.");
        assert_eq!(chat(&client, &base, &token, &message).await, 200);
        accepted.push(message);
    }

    // Every accepted turn is stored, complete.
    let history: Value = client
        .get(format!("{base}/api/v1/conversation/history?limit=100"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["query"].as_str())
        .collect();
    for m in &accepted {
        assert!(stored.contains(&m.as_str()), "lost: {m}\n{stored:?}");
    }
}
