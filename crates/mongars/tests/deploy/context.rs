//! `.dockerignore`: what a build context of the repository holds. A copy of
//! the tracked files with secrets, data and build output planted in it is
//! sent to the engine (`FROM scratch`, `COPY . /ctx`: nothing to pull), and
//! the image's files are listed.

use super::docker::{Cleanup, available, docker, repo, run, unique};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Planted in the copy; none may reach the context.
const PLANTED: &[&str] = &[
    "data/jwt.key",
    "data/mongars.db",
    ".env",
    ".env.production",
    "crates/mongars/.env",
    "target/release/mongars",
    "crates/mongars/target/debug/leftover",
    "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    ".git/config",
    "deploy/tls/server.key",
    "deploy/tls/server.pem",
    "deploy/k8s/db-secret.yaml",
    "config/credentials.toml",
    "id_ed25519",
    "mongars.db",
];

/// What the source build needs; all must reach the context.
const NEEDED: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "deploy/Dockerfile",
    "scripts/models.sh",
    "config/default.toml",
    "crates/mongars-config/src/secret.rs",
    "crates/mongars/src/main.rs",
];

fn copy_tracked(to: &Path) {
    let files = run(
        "git",
        &["ls-files", "--cached", "--others", "--exclude-standard"],
    );
    for f in files.lines().chain([".dockerignore"]) {
        let from = repo().join(f);
        if !from.is_file() {
            continue;
        }
        let dest = to.join(f);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&from, &dest).unwrap();
    }
}

#[test]
fn the_build_context_keeps_out_data_secrets_and_build_output() {
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_tracked(dir.path());
    for p in PLANTED {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "planted").unwrap();
    }
    let tag = unique("context");
    let mut cleanup = Cleanup(vec![Cleanup::image(&tag)]);
    let mut build = Command::new("docker")
        .args(["build", "-q", "-f", "-", "-t", &tag])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    build
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM scratch\nCOPY . /ctx/\n")
        .unwrap();
    let out = build.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let container = docker(&["create", &tag, "/none"]);
    cleanup.0.push(Cleanup::container(&container));
    let tar = dir.path().join("context.tar");
    docker(&["export", "-o", tar.to_str().unwrap(), &container]);
    let listed = run("tar", &["-tf", tar.to_str().unwrap()]);
    let files: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.strip_prefix("ctx/"))
        .filter(|l| !l.ends_with('/'))
        .collect();
    for p in PLANTED {
        assert!(!files.contains(p), "{p} reached the build context");
    }
    for p in NEEDED {
        assert!(files.contains(p), "{p} is missing from the build context");
    }
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("target/") || f.starts_with("data/")),
        "{files:?}"
    );
}
