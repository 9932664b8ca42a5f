//! `mongars` as a child process, with the environment the tests share.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary in a clean environment, run in `dir`, with `env` on top.
pub fn mongars(dir: &Path, env: &[(&str, &str)]) -> Command {
    // This process's own HTTP clients speak TLS through ring too.
    mongars_net::install_crypto();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mongars"));
    cmd.current_dir(dir).env_clear();
    // Cheap hashing keeps the tests quick; the defaults are measured in the bench.
    cmd.env("MONGARS_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("MONGARS_AUTH__ARGON2_ITERATIONS", "1")
        .env("MONGARS_LOGGING__FORMAT", "json")
        // Tests run side by side; spinning llama.cpp threads must not
        // outnumber the cores.
        .env("MONGARS_LLM__EMBEDDED__THREADS", "1")
        .env(
            "MONGARS_LLM__EMBEDDED__MODEL_PATH",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../models/SmolLM2-135M-Instruct.Q4_1.gguf"
            ),
        )
        .env(
            "MONGARS_EMBEDDINGS__MODEL_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/all-MiniLM-L6-v2"),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Start `mongars serve` and return it with the address it printed.
pub fn start_server(
    dir: &Path,
    env: &[(&str, &str)],
) -> (Child, String, std::sync::mpsc::Receiver<String>) {
    let mut child = mongars(dir, env)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server printed its address");
    let addr = line.rsplit("http://").next().unwrap().to_string();
    (child, addr, rx)
}

/// SIGTERM, then wait for the exit.
pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
