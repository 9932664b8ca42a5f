//! The image, built here the offline way (a base made from Debian's
//! packages by `deploy/base.sh`, the binary of this build staged by
//! `deploy/build.sh`), run as operators run it: read-only root filesystem,
//! no capabilities, models on a read-only volume.

use super::docker::{Cleanup, available, build_image, docker, login, output, repo, unique};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "correct-horse-battery-1";

fn inspect(what: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, what])
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status() == 200
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the container never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_image_runs_unprivileged_read_only_serves_a_chat_and_stops_on_sigterm() {
    if !available() {
        return;
    }
    let models = repo().join("models");
    assert!(
        models.join("SmolLM2-135M-Instruct.Q4_1.gguf").exists(),
        "`make test` fetches the models"
    );
    let tag = format!("{}:latest-test", unique("image"));
    build_image(&tag);
    let mut cleanup = Cleanup(vec![Cleanup::image(&tag)]);

    // What the image says of itself.
    assert_eq!(inspect(&tag, "{{.Config.User}}"), "10001:10001");
    assert_eq!(inspect(&tag, "{{.Config.StopSignal}}"), "SIGTERM");
    assert!(inspect(&tag, "{{json .Config.Healthcheck.Test}}").contains("probe"));
    let labels: Value = serde_json::from_str(&inspect(&tag, "{{json .Config.Labels}}")).unwrap();
    for l in ["version", "revision", "source", "licenses"] {
        let key = format!("org.opencontainers.image.{l}");
        assert!(
            labels[&key].as_str().is_some_and(|v| !v.is_empty()),
            "{key}: {labels}"
        );
    }

    // On a small share of the machine, it tunes itself to that share.
    let out = output(
        "docker",
        &["run", "--rm", "--cpus=1", "--memory=512m", &tag, "doctor"],
    );
    let doctor = String::from_utf8_lossy(&out.stdout);
    for choice in [
        "server.worker_threads = 1 ",
        "llm.embedded.threads = 1 ",
        "llm.embedded.parallel = 2 (512 MiB of memory",
        "llm.embedded.context_tokens = 1024 (512 MiB of memory",
        "embeddings.batch_size = 8 (512 MiB of memory)",
        "database.max_connections = 4 ",
        "cgroup quota 1.00",
    ] {
        assert!(
            doctor.contains(choice),
            "doctor lacks {choice:?}:\n{doctor}"
        );
    }

    let volume = format!("{}:/models:ro", models.display());
    let admin = format!("MONGARS_BOOTSTRAP__ADMIN_PASSWORD={ADMIN_PASSWORD}");
    let started = Instant::now();
    let container = docker(&[
        "run",
        "-d",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "-p",
        "127.0.0.1::8000",
        "-v",
        &volume,
        "-e",
        "MONGARS_BOOTSTRAP__ADMIN_USERNAME=admin",
        "-e",
        &admin,
        "-e",
        "MONGARS_LLM__EMBEDDED__THREADS=1",
        "-e",
        "MONGARS_AUTH__ARGON2_MEMORY_KIB=1024",
        "-e",
        "MONGARS_SERVER__SHUTDOWN_GRACE_SECS=10",
        &tag,
    ]);
    cleanup.0.push(Cleanup::container(&container));
    let port = docker(&["port", &container, "8000/tcp"]);
    let base = format!("http://{}", port.lines().next().unwrap());
    mongars_net::install_crypto();
    let client = reqwest::Client::new();
    let ready = wait_ready(&client, &base).await;
    eprintln!(
        "container ready {:.1} s after docker run ({:.1} s in the server)",
        started.elapsed().as_secs_f64(),
        ready.as_secs_f64()
    );

    // Unprivileged, with nothing to write but its volume and /tmp.
    let status = docker(&["exec", &container, "cat", "/proc/1/status"]);
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), ["10001"; 4]);
    assert_eq!(field("Gid:"), ["10001"; 4]);
    assert_eq!(field("CapEff:"), ["0000000000000000"]);
    assert_eq!(field("CapPrm:"), ["0000000000000000"]);
    let write = docker_fails(&["exec", &container, "touch", "/usr/local/bin/x"]);
    assert!(write, "the root filesystem took a write");
    docker(&[
        "exec",
        &container,
        "touch",
        "/var/lib/mongars/probe-write",
        "/tmp/x",
    ]);
    docker(&[
        "exec",
        &container,
        "/usr/local/bin/mongars",
        "probe",
        "--ready",
    ]);

    // A chat on the embedded model.
    let token = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let reply = client
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(&token)
        .json(&json!({"message": "What is the capital of France?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let reply: Value = reply.json().await.unwrap();
    assert!(
        reply["response"]
            .as_str()
            .is_some_and(|r| r.contains("Paris")),
        "{reply}"
    );

    // SIGTERM: it finishes and exits 0 by itself (a kill after the timeout
    // would exit 137).
    let stopping = Instant::now();
    docker(&["stop", "-t", "60", &container]);
    eprintln!("stopped in {:.1} s", stopping.elapsed().as_secs_f64());
    assert_eq!(inspect(&container, "{{.State.ExitCode}}"), "0");
    assert_eq!(inspect(&container, "{{.State.OOMKilled}}"), "false");
}

fn docker_fails(args: &[&str]) -> bool {
    !output("docker", args).status.success()
}
