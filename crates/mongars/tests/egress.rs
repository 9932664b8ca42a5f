//! Zero egress. The default configuration runs in a network namespace that
//! has nothing but loopback (`unshare --net`, as root), under `strace`
//! recording every `connect` and addressed send: a user logs in, chats on
//! the embedded model, stores a memory and finds it by meaning, and gets an
//! embedding, and the server never tries to reach an address outside the
//! machine. With a remote backend and research configured (loopback fakes
//! standing in for the outside world), it connects to those addresses and
//! to no other.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

#[path = "api/common/fake.rs"]
#[allow(dead_code)]
mod fake;
mod process;

use process::{login, start_command, wrapped};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};

/// Whether this machine can run the namespace and the tracer; under
/// `CI=true` it must.
fn tools_present() -> bool {
    let root = rustix::process::geteuid().is_root();
    let found = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ok = root && found("strace") && found("unshare") && found("nsenter");
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI=true but this test needs root, strace, unshare and nsenter (scripts/deps.sh)"
        );
        mongars_store::testing::skipped("not root, or no strace/unshare/nsenter");
    }
    ok
}

const TRACED: &str = "trace=connect,sendto,sendmsg,sendmmsg,accept,accept4";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "egress-test-secret-egress-test-secret-0123",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
    ]
}

/// The traced `mongars serve`: strace's child. SIGTERM to it; strace ends
/// with it.
fn stop(tracer: &mut Child) {
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", tracer.id()))
        .unwrap_or_default();
    for pid in children.split_whitespace() {
        let _ = Command::new("kill").args(["-TERM", pid]).status();
    }
    assert!(tracer.wait().unwrap().success() || children.is_empty());
}

/// Every address the trace shows the server connecting or sending to, as
/// `family address port` (Unix and netlink sockets left out), and how many
/// connections it accepted.
fn destinations(trace: &Path) -> (BTreeSet<String>, usize) {
    let text = std::fs::read_to_string(trace).unwrap();
    let mut seen = BTreeSet::new();
    let mut accepted = 0;
    for line in text.lines() {
        if line.contains("accept") && !line.contains("= -1") && !line.contains("resumed>") {
            accepted += 1;
        }
        let Some(at) = line.find("sa_family=") else {
            continue;
        };
        let rest = &line[at + "sa_family=".len()..];
        let family = rest.split([',', '}']).next().unwrap_or("");
        if !(family == "AF_INET" || family == "AF_INET6") || line.contains("accept") {
            continue;
        }
        let port = between(rest, "htons(", ")").unwrap_or("?");
        let addr = between(rest, "inet_addr(\"", "\"")
            .or_else(|| between(rest, "inet_pton(AF_INET6, \"", "\""))
            .unwrap_or("?");
        seen.insert(format!("{family} {addr} {port}"));
    }
    (seen, accepted)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

fn is_loopback(dest: &str) -> bool {
    let addr = dest.split(' ').nth(1).unwrap_or("");
    addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.")
}

#[test]
fn the_default_configuration_needs_no_network_and_reaches_none() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.display().to_string();
    let script = format!(
        "ip link set lo up && exec strace -f -qq --seccomp-bpf -e {TRACED} -o {trace_arg} \"$0\" \"$@\""
    );
    let cmd = wrapped(
        dir.path(),
        &env(),
        &["unshare", "--net", "--", "sh", "-c", &script],
    );
    let (mut tracer, addr, _lines) = start_command(dir.path(), cmd);
    let client = Command::new("nsenter")
        .arg(format!("--net=/proc/{}/ns/net", tracer.id()))
        .args(["--", "python3"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/egress_client.py"
        ))
        .arg(format!("http://{addr}"))
        .output()
        .unwrap();
    stop(&mut tracer);
    assert!(
        client.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&client.stderr)
    );
    let got: Value = serde_json::from_slice(&client.stdout).unwrap();
    for reply in got["replies"].as_array().unwrap() {
        assert!(!reply.as_str().unwrap().trim().is_empty(), "{got}");
    }
    assert_eq!(got["found"][0], "I keep bees on my balcony.", "{got}");
    assert_eq!(got["dimensions"], 384, "{got}");

    let (seen, accepted) = destinations(&trace);
    assert!(
        accepted >= 1,
        "the trace saw the client's connection: {}",
        std::fs::read_to_string(&trace).unwrap()
    );
    let outside: Vec<_> = seen.iter().filter(|d| !is_loopback(d)).collect();
    assert!(
        outside.is_empty(),
        "connections out of the machine: {outside:?}"
    );
}

/// SearxNG, a web page with its robots.txt: the outside world research
/// reaches, on loopback, recording what it is asked.
async fn outside_world() -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::Router;
    use axum::extract::State;
    use axum::routing::get;
    type Hits = Arc<Mutex<Vec<String>>>;
    let hits: Hits = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route(
            "/search",
            get(|State((hits, base)): State<(Hits, String)>| async move {
                hits.lock().unwrap().push("search".into());
                axum::Json(json!({"results": [{
                    "url": format!("{base}/pages/kuiper"),
                    "title": "Kuiper belt",
                    "content": "A short snippet."
                }]}))
            }),
        )
        .route(
            "/robots.txt",
            get(|State((hits, _)): State<(Hits, String)>| async move {
                hits.lock().unwrap().push("robots".into());
                "User-agent: *\nAllow: /\n"
            }),
        )
        .route(
            "/pages/kuiper",
            get(|State((hits, _)): State<(Hits, String)>| async move {
                hits.lock().unwrap().push("page".into());
                axum::response::Html("<p>The Kuiper belt is a disc of icy bodies.</p>")
            }),
        )
        .with_state((hits.clone(), base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_remote_backend_and_research_it_connects_only_where_configured() {
    if !tools_present() {
        return;
    }
    let backend = fake::Fake::start(fake::Mode::Ok("From the remote backend".into())).await;
    let (world, hits) = outside_world().await;
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.display().to_string();
    let mut vars = env();
    vars.extend([
        ("MONGARS_LLM__BACKENDS__OPENAI__URL", backend.url.as_str()),
        ("MONGARS_LLM__BACKENDS__OPENAI__MODEL", "fake-model"),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS",
            "openai",
        ),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS", "openai"),
        ("MONGARS_RESEARCH__ENABLED", "true"),
        ("MONGARS_RESEARCH__SEARXNG_URL", world.as_str()),
    ]);
    let cmd = wrapped(
        dir.path(),
        &vars,
        &[
            "strace",
            "-f",
            "-qq",
            "--seccomp-bpf",
            "-e",
            TRACED,
            "-o",
            &trace_arg,
        ],
    );
    let (mut tracer, addr, _lines) = start_command(dir.path(), cmd);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;
    let resp = client
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(&token)
        .json(&json!({"message": "What is the Kuiper belt?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["response"], "From the remote backend");
    stop(&mut tracer);
    let asked = hits.lock().unwrap().clone();
    assert!(asked.contains(&"search".to_string()), "{asked:?}");
    assert!(asked.contains(&"page".to_string()), "{asked:?}");

    let port = |url: &str| url.rsplit(':').next().unwrap().to_string();
    let allowed: BTreeSet<String> = [&backend.url, &world]
        .iter()
        .map(|u| format!("AF_INET 127.0.0.1 {}", port(u)))
        .collect();
    let (seen, _) = destinations(&trace);
    let elsewhere: Vec<_> = seen.difference(&allowed).collect();
    assert!(
        elsewhere.is_empty(),
        "connections beyond the configured backend and research: {elsewhere:?} (all: {seen:?})"
    );
    assert_eq!(seen, allowed, "both were used");
}

/// The trace reader sees what strace writes for a connection out.
#[test]
fn the_trace_reader_finds_outside_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.txt");
    std::fs::write(
        &trace,
        "12 connect(5, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"10.1.2.3\")}, 16) = -1 EINPROGRESS\n\
         12 connect(6, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, \"2001:db8::1\", &sin6_addr), sin6_scope_id=0}, 28) = 0\n\
         12 connect(7, {sa_family=AF_UNIX, sun_path=\"/run/x\"}, 110) = 0\n\
         12 connect(8, {sa_family=AF_INET, sin_port=htons(5432), sin_addr=inet_addr(\"127.0.0.1\")}, 16) = 0\n\
         12 accept4(9, {sa_family=AF_INET, sin_port=htons(40000), sin_addr=inet_addr(\"127.0.0.1\")}, [16], SOCK_CLOEXEC) = 10\n",
    )
    .unwrap();
    let (seen, accepted) = destinations(&trace);
    assert_eq!(accepted, 1);
    let outside: Vec<_> = seen.iter().filter(|d| !is_loopback(d)).cloned().collect();
    assert_eq!(
        outside,
        ["AF_INET 10.1.2.3 8080", "AF_INET6 2001:db8::1 80"],
        "{seen:?}"
    );
    assert!(seen.contains("AF_INET 127.0.0.1 5432"));
}
