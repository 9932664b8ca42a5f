//! Schemathesis (from PyPI, installed by `make test`) against the
//! `/openapi.json` of a live `mongars serve` (the embedded model, memory
//! and peers on): every operation, with data that fits the contract and
//! data that does not, must never answer a server error and never answer
//! something its own schema does not describe. A fixed seed keeps the run
//! the same from one machine to the next.
//!
//! Operations that end the caller's own account or sessions (erasing its
//! data, changing its password, editing users) run last, in a second pass,
//! so that the first keeps a working token.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod process;

use process::{login, start_server, terminate};
use std::process::Command;

const ACCOUNT_ENDING: &str = r"^/api/v1/user/(data|change-password)$|^/api/v1/user/\{username\}$";

fn schemathesis(pydeps: &str, base: &str, token: &str, paths: (&str, &str)) -> String {
    // The package's entry point, whatever pip did with its scripts.
    let out = Command::new("python3")
        .args([
            "-c",
            "from schemathesis.cli import schemathesis; schemathesis()",
        ])
        .env("PYTHONPATH", pydeps)
        .env("NO_COLOR", "1")
        .args(["run", &format!("{base}/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", "20", "--seed", "20261204"])
        .args(["--request-timeout", "60", "--workers", "1"])
        .args([paths.0, paths.1])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_keeps_its_contract_under_generated_requests() {
    let pydeps = std::env::var("MONGARS_TEST_PYDEPS")
        .ok()
        .filter(|p| !p.is_empty());
    let Some(pydeps) = pydeps else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but MONGARS_TEST_PYDEPS is not set: run `make test`"
        );
        mongars_store::testing::skipped(
            "no schemathesis (MONGARS_TEST_PYDEPS not set; `make test` installs it)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "schema-test-secret-schema-test-secret-0123",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "100000"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "1000000"),
        ("MONGARS_AUTH__THROTTLE__MAX_FAILURES_PER_USER", "1000000"),
        (
            "MONGARS_AUTH__THROTTLE__MAX_FAILURES_PER_ADDRESS",
            "1000000",
        ),
        ("MONGARS_LLM__PROFILES__DEFAULT__GENERAL__MAX_TOKENS", "8"),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__MAX_TOKENS", "8"),
        ("MONGARS_PEERS__ENABLED", "true"),
        ("MONGARS_PEERS__PORT", "0"),
    ];
    let (mut server, addr, _lines) = start_server(dir.path(), &env);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;
    let first = schemathesis(
        &pydeps,
        &base,
        &token,
        ("--exclude-path-regex", ACCOUNT_ENDING),
    );
    // Every operation but the account-ending ones was tried.
    let tested: usize = first
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count of tested operations:\n{first}"));
    assert!(tested >= 55, "only {tested} operations tested:\n{first}");
    let token = login(&client, &base).await;
    schemathesis(
        &pydeps,
        &base,
        &token,
        ("--include-path-regex", ACCOUNT_ENDING),
    );
    assert!(terminate(&mut server).success());
}
