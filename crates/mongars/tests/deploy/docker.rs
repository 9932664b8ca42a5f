//! Docker from a test: the CLI, run and checked, and things removed when a
//! test ends however it ends.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Whether a Docker engine answers. Missing: `false` and the test is
/// recorded as skipped, or a failure under `CI=true`.
pub fn available() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "CI=true but no Docker engine answers `docker info`"
        );
        mongars_store::testing::skipped("no Docker engine (docker info failed)");
    }
    ok
}

/// Run `program args`, panicking with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{program} {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

pub fn docker(args: &[&str]) -> String {
    run("docker", args)
}

/// A name unique to this test run.
pub fn unique(what: &str) -> String {
    format!("mongars-test-{what}-{}", std::process::id())
}

/// Removes a container or an image when dropped.
pub struct Cleanup(pub Vec<Vec<String>>);

impl Cleanup {
    pub fn container(id: &str) -> Vec<String> {
        ["rm", "-f", "-v", id].map(String::from).to_vec()
    }

    pub fn image(tag: &str) -> Vec<String> {
        ["rmi", "-f", tag].map(String::from).to_vec()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in self.0.iter().rev() {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

/// The server image, built the offline way from this test build's binary
/// (`deploy/build.sh`, on a base made from Debian's packages).
pub fn build_image(tag: &str) {
    let started = std::time::Instant::now();
    let out = output(
        "deploy/build.sh",
        &[
            "--offline",
            "--binary",
            env!("CARGO_BIN_EXE_mongars"),
            "--tag",
            tag,
        ],
    );
    assert!(
        out.status.success(),
        "deploy/build.sh: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "image {tag}: built in {:.1} s (base included), {} bytes",
        started.elapsed().as_secs_f64(),
        docker(&["inspect", "-f", "{{.Size}}", tag])
    );
}

/// A token for `username` from the server at `base`.
pub async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let answer: serde_json::Value = client
        .post(format!("{base}/token"))
        .form(&[
            ("username", username),
            ("password", password),
            ("grant_type", "password"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .expect("a token")
        .to_string()
}
