//! The 64-bit ARM build (Raspberry Pi, Jetson): `deploy/cross-arm64.sh`
//! cross-compiles the server with Debian's toolchain and runs `--version` and
//! `doctor` under qemu-aarch64. The build takes a quarter of an hour on two
//! cores, so `make test` starts it in the background at the lowest priority
//! and runs this test last (it is ignored in the main run), pointing
//! `MONGARS_TEST_ARM64_DIR` at what the script printed; without that
//! variable the test runs the script itself
//! (`cargo test --test deploy -- --ignored arm64`).

use super::docker::repo;
use std::path::PathBuf;
use std::process::Command;

/// ELF machine number of AArch64.
const EM_AARCH64: u16 = 183;

/// What the script printed: its exit status, its standard output (the
/// binary's path) and its standard error (the build, then what the binary
/// said under qemu).
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

fn cross_build() -> Run {
    if let Some(dir) = std::env::var_os("MONGARS_TEST_ARM64_DIR").map(PathBuf::from) {
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
        };
        return Run {
            success: read("status").trim() == "0",
            stdout: read("stdout"),
            stderr: read("stderr"),
        };
    }
    let out = Command::new(repo().join("deploy/cross-arm64.sh"))
        .args(["--profile", "arm64-check"])
        .current_dir(repo())
        .output()
        .expect("run deploy/cross-arm64.sh");
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
#[ignore = "minutes of cross build: `make test` runs it last, after the build it started"]
fn the_arm64_binary_is_aarch64_and_runs_version_and_doctor_under_qemu() {
    let run = cross_build();
    let said = &run.stderr;
    let lines: Vec<&str> = said.lines().collect();
    let tail = lines[lines.len().saturating_sub(40)..].join("\n");
    assert!(run.success, "cross-arm64.sh failed:\n{tail}");

    let path = repo().join(run.stdout.trim());
    let binary = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        &binary[..4],
        b"\x7fELF",
        "{} is not an ELF file",
        path.display()
    );
    assert_eq!(binary[4], 2, "not a 64-bit ELF");
    let machine = u16::from_le_bytes([binary[18], binary[19]]);
    assert_eq!(machine, EM_AARCH64, "ELF machine {machine}, not AArch64");

    // What the binary itself printed under qemu.
    let version = format!("mongars {}", env!("CARGO_PKG_VERSION"));
    assert!(
        said.lines().any(|l| l.trim() == version),
        "no `{version}` from --version under qemu:\n{tail}"
    );
    for line in [
        "[ ok ] settings",
        "[ ok ] database",
        "[ ok ] model",
        "[info] tuning         server.worker_threads",
        "all checks passed",
    ] {
        assert!(
            said.contains(line),
            "doctor under qemu did not say `{line}`:\n{tail}"
        );
    }
}
