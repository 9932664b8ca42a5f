//! The `mongars` binary as a new user runs it: a clean environment, a fresh
//! working folder, the default SQLite database in `./data`.

mod process;

use process::{mongars, start_server, terminate};
use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut child = mongars(dir, env)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mongars");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn invalid_settings_exit_non_zero_naming_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["serve"],
        &[
            ("MONGARS_SERVER__PORT", "abc"),
            ("MONGARS_AUTH__JWT_SECRET", "short"),
        ],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.port") && err.contains("MONGARS_SERVER__PORT"),
        "{err}"
    );
    assert!(
        err.contains("auth.jwt_secret") && err.contains("32 bytes"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nport = \"eighty\"\n[nope]\nx = 1\n").unwrap();
    let out = run(
        dir.path(),
        &["--config", file.to_str().unwrap(), "doctor"],
        &[],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("server.port") && err.contains("nope") && err.contains("bad.toml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_user_flow_add_admin_then_token_then_user_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["user", "add", "alice", "--admin"],
        &[],
        Some("correct-horse-1\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created alice (admin)"));
    assert!(
        dir.path().join("data/mongars.db").exists(),
        "SQLite in ./data"
    );

    // The documented default address when it is free, else any port.
    let port_free = std::net::TcpListener::bind("127.0.0.1:8000").is_ok();
    let env: &[(&str, &str)] = if port_free {
        &[]
    } else {
        &[("MONGARS_SERVER__PORT", "0")]
    };
    let (mut child, addr, _lines) = start_server(dir.path(), env);
    if port_free {
        assert_eq!(addr, "127.0.0.1:8000");
    }
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/token"))
        .form(&[("username", "alice"), ("password", "correct-horse-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let list: serde_json::Value = client
        .get(format!("http://{addr}/api/v1/user/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["users"], serde_json::json!(["alice"]));

    let status = terminate(&mut child);
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let key = dir.path().join("data/jwt.key");
    assert!(key.exists(), "generated key kept in the data folder");

    // Tokens survive a restart because the key is kept.
    let (mut child, addr, _lines) = start_server(dir.path(), &[("MONGARS_SERVER__PORT", "0")]);
    let resp = client
        .get(format!("http://{addr}/api/v1/user/list"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    terminate(&mut child);
}

#[test]
fn user_commands_manage_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        run(d, &["user", "add", "bob"], &[], Some("bob-password\n"))
            .status
            .success()
    );
    let dup = run(d, &["user", "add", "BOB"], &[], Some("bob-password\n"));
    assert!(!dup.status.success());
    assert!(
        text(&dup.stderr).contains("already exists"),
        "{}",
        text(&dup.stderr)
    );
    let short = run(d, &["user", "add", "carol"], &[], Some("short\n"));
    assert!(!short.status.success());
    assert!(
        text(&short.stderr).contains("8 to 256"),
        "{}",
        text(&short.stderr)
    );
    let bad = run(d, &["user", "add", "no spaces"], &[], Some("long-enough\n"));
    assert!(!bad.status.success());

    assert!(
        run(d, &["user", "disable", "bob"], &[], None)
            .status
            .success()
    );
    let list = text(&run(d, &["user", "list"], &[], None).stdout);
    assert!(list.contains("bob") && list.contains("disabled"), "{list}");
    assert!(
        run(d, &["user", "enable", "bob"], &[], None)
            .status
            .success()
    );
    assert!(
        run(
            d,
            &["user", "passwd", "bob"],
            &[],
            Some("new-bob-password\n")
        )
        .status
        .success()
    );
    let missing = run(
        d,
        &["user", "passwd", "nobody"],
        &[],
        Some("whatever-pass\n"),
    );
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("not found"));
}

#[test]
fn migrate_check_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let check = run(d, &["migrate", "--check"], &[], None);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stdout).contains("pending: 1 accounts"),
        "{}",
        text(&check.stdout)
    );
    let apply = run(d, &["migrate"], &[], None);
    assert!(apply.status.success());
    assert!(
        text(&apply.stdout).contains("applied migrations [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]"),
        "{}",
        text(&apply.stdout)
    );
    let again = run(d, &["migrate", "--check"], &[], None);
    assert_eq!(again.status.code(), Some(0));
}

#[test]
fn config_show_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["config", "show"],
        &[
            (
                "MONGARS_AUTH__JWT_SECRET",
                "super-secret-signing-key-0123456789abcdef",
            ),
            (
                "MONGARS_DATABASE__URL",
                "postgres://app:db-password@db/mongars",
            ),
            ("MONGARS_BOOTSTRAP_ADMIN_USERNAME", "root"),
            ("MONGARS_BOOTSTRAP_ADMIN_PASSWORD", "root-password-123"),
            // Credentials inside any URL a setting holds.
            (
                "MONGARS_LLM__BACKENDS__OLLAMA__URL",
                "http://ollama-user:ollama-pass@gpu:11434",
            ),
            (
                "MONGARS_LLM__BACKENDS__RAY__URL",
                "http://ray:ray-pass-1@r1:8000, http://r2:8000",
            ),
            ("MONGARS_EMBEDDINGS__URL", "http://emb:emb-pass@e:1"),
            (
                "MONGARS_RESEARCH__SEARXNG_URL",
                "http://s:searx-pass@s:8080",
            ),
            ("MONGARS_RESEARCH__DOCUMENTS_URL", "http://d:docs-pass@d:9"),
            (
                "MONGARS_TELEMETRY__OTLP_ENDPOINT",
                "http://o:otlp-pass@c:4318",
            ),
        ],
        None,
    );
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(shown.contains("http://[REDACTED]@gpu:11434"), "{shown}");
    assert!(shown.contains("http://r2:8000"), "{shown}");
    for secret in [
        "super-secret",
        "db-password",
        "root-password-123",
        "ollama-pass",
        "ray-pass-1",
        "emb-pass",
        "searx-pass",
        "docs-pass",
        "otlp-pass",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.contains("[REDACTED]"));
    assert!(
        shown.contains("port = 8000") && shown.contains("host = \"127.0.0.1\""),
        "{shown}"
    );
    assert!(shown.contains("admin_username = \"root\""));

    // MONGARS_CONFIG names a file; environment variables still win over it.
    let file = dir.path().join("site.toml");
    std::fs::write(&file, "[server]\nport = 9123\nhost = \"0.0.0.0\"\n").unwrap();
    let out = run(
        dir.path(),
        &["config", "show"],
        &[
            ("MONGARS_CONFIG", file.to_str().unwrap()),
            ("MONGARS_SERVER__HOST", "::1"),
        ],
        None,
    );
    let shown = text(&out.stdout);
    assert!(
        shown.contains("port = 9123") && shown.contains("host = \"::1\""),
        "{shown}"
    );
}

#[test]
fn doctor_reports_problems_then_passes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = run(
        d,
        &["doctor"],
        &[("MONGARS_DATABASE__MIGRATE_ON_START", "false")],
        None,
    );
    let out = text(&first.stdout);
    assert_eq!(first.status.code(), Some(1), "{out}");
    assert!(out.contains("run `mongars migrate`"), "{out}");
    assert!(
        run(
            d,
            &["user", "add", "root", "--admin"],
            &[],
            Some("root-password\n")
        )
        .status
        .success()
    );
    let second = run(d, &["doctor"], &[], None);
    let out = text(&second.stdout);
    assert_eq!(second.status.code(), Some(0), "{out}");
    for part in [
        "database",
        "migrations",
        "admin accounts",
        "signing key",
        "cpus",
        "memory",
        "0 complete, 0 failed (0 interrupted), 0 pending",
        "connections",
        "open-file limit",
    ] {
        assert!(out.contains(part), "{part} missing:\n{out}");
    }
}

#[test]
fn a_missing_model_stops_serve_with_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["serve"],
        &[
            ("MONGARS_LLM__EMBEDDED__MODEL_PATH", "models/absent.gguf"),
            ("MONGARS_SERVER__PORT", "0"),
        ],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("models/absent.gguf") && err.contains("make models"),
        "{err}"
    );
    let doctor = run(
        dir.path(),
        &["doctor"],
        &[("MONGARS_LLM__EMBEDDED__MODEL_PATH", "models/absent.gguf")],
        None,
    );
    let out = text(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(
        out.contains("[FAIL] model") && out.contains("make models"),
        "{out}"
    );
}

#[test]
fn help_explains_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = text(&run(dir.path(), &["--help"], &[], None).stdout);
    for cmd in ["serve", "migrate", "user", "config", "doctor"] {
        assert!(out.contains(cmd), "{cmd} missing from --help:\n{out}");
    }
    let user = text(&run(dir.path(), &["user", "--help"], &[], None).stdout);
    for cmd in ["add", "list", "passwd", "disable", "enable"] {
        assert!(user.contains(cmd), "{cmd} missing:\n{user}");
    }
}

#[test]
fn doctor_says_which_remote_urls_use_tls() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["doctor"],
        &[
            ("MONGARS_LLM__PROFILE", "ollama"),
            (
                "MONGARS_LLM__BACKENDS__OLLAMA__URL",
                "https://user:pw@gpu.example:11434",
            ),
            ("MONGARS_TELEMETRY__OTLP_ENDPOINT", "http://collector:4318"),
        ],
        None,
    );
    let shown = text(&out.stdout);
    assert!(
        shown.contains("backend ollama https://[REDACTED]@gpu.example:11434: TLS"),
        "{shown}"
    );
    assert!(
        shown.contains("otlp http://collector:4318: plain HTTP"),
        "{shown}"
    );
    assert!(
        shown.contains("public roots (tls.ca_file not set)"),
        "{shown}"
    );
    assert!(!shown.contains("pw@"), "{shown}");
}

fn peer(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["peer"];
    all.extend_from_slice(args);
    run(dir, &all, &[], None)
}

/// `mongars peer` as an operator runs it: the node id, the peer list.
#[test]
fn identity_is_made_once_and_peers_are_added_listed_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = peer(d, &["identity"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let id = text(&first.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(text(&peer(d, &["identity"]).stdout).trim(), id);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = d.join("data/peer/node.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    assert!(run(d, &["migrate"], &[], None).status.success());
    let fp = "0f".repeat(32);
    let bad = peer(d, &["add", "https://node-b:8443", "not-hex"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("fingerprint"),
        "{}",
        text(&bad.stderr)
    );
    let plain = peer(d, &["add", "http://node-b:8443", &fp]);
    assert!(!plain.status.success());
    assert!(
        text(&plain.stderr).contains("https://"),
        "{}",
        text(&plain.stderr)
    );
    let own = peer(d, &["add", "https://node-b:8443", &id]);
    assert!(!own.status.success());

    let add = peer(d, &["add", "https://node-b:8443", &fp]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let list = text(&peer(d, &["list"]).stdout);
    assert!(
        list.contains("https://node-b:8443") && list.contains(&fp),
        "{list}"
    );
    assert!(peer(d, &["remove", "https://node-b:8443"]).status.success());
    let gone = peer(d, &["remove", "https://node-b:8443"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&peer(d, &["list"]).stdout).starts_with("no peers"));

    let rotated = peer(d, &["identity", "--rotate"]);
    assert!(rotated.status.success());
    assert_ne!(text(&rotated.stdout).trim(), id);
    assert!(d.join("data/peer/node.key.old").exists());
}
