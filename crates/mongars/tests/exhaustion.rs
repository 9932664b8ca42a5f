//! A real `mongars serve` with 1,024 file descriptors, and 1,100 clients
//! that open a connection and never finish their headers: the server keeps
//! answering (503 past its cap, derived from the descriptor limit), closes
//! the stalled connections after the header-read timeout, and then serves
//! as before. Also: logs written to a pipe carry no colour codes.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod process;

use process::terminate;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CLIENTS: usize = 1100;

/// This test process needs more descriptors than it has by default.
fn raise_own_limit(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|c| c >= want) {
        return;
    }
    let max = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        max >= want,
        "this test needs {want} open files; the hard limit is {max}"
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: limit.maximum,
        },
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_clients_cannot_exhaust_a_server_with_1024_descriptors() {
    raise_own_limit(4096);
    let dir = tempfile::tempdir().unwrap();
    let cmd = process::mongars(
        dir.path(),
        &[
            ("MONGARS_SERVER__PORT", "0"),
            ("MONGARS_SERVER__HEADER_READ_TIMEOUT_SECS", "10"),
            ("MONGARS_MEMORY__ENABLED", "false"),
            // The reserve below counts a pool of 10, whatever the machine.
            ("MONGARS_DATABASE__MAX_CONNECTIONS", "10"),
        ],
    );
    // The same binary, under a shell that lowers the limit first.
    let program = cmd.get_program().to_owned();
    let mut shell = Command::new("/bin/sh");
    shell
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" serve")
        .arg(program)
        .current_dir(dir.path())
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = shell.spawn().unwrap();
    let addr = first_line(&mut server)
        .rsplit("http://")
        .next()
        .unwrap()
        .trim()
        .to_string();

    // The cap the server derives from its 1,024 descriptors.
    let cap = mongars::limits::derived_cap(1024, 10) as usize;
    assert!(cap < CLIENTS);

    // 1,100 connections that send part of a request and stop; each one's
    // end is reported as it comes.
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..CLIENTS {
        let mut tcp = TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        let ended_tx = ended_tx.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(120), tcp.read_to_end(&mut got)).await;
            let answer = match read {
                Ok(_) => String::from_utf8_lossy(&got).into_owned(),
                Err(_) => "held".to_string(),
            };
            let _ = ended_tx.send(answer);
        });
    }
    // Those past the cap are answered 503 at once, in the API's shape.
    let mut answers = Vec::new();
    let mut busy = 0;
    while busy < CLIENTS - cap {
        let answer = ended.recv().await.unwrap();
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("\"code\":\"server.busy\""), "{answer}");
            busy += 1;
        }
        answers.push(answer);
    }
    // The server still answers a new client meanwhile: 503 while the
    // stalled connections fill it, 200 once they are gone.
    let (status, body) = get(&addr, "/healthz").await;
    assert!(
        status == 200 || status == 503,
        "healthz answered {status}: {body}"
    );

    // The others are closed by the server at the header-read timeout.
    while answers.len() < CLIENTS {
        answers.push(ended.recv().await.unwrap());
    }
    assert!(
        !answers.iter().any(|a| a == "held"),
        "a stalled connection was held"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|a| a.starts_with("HTTP/1.1 503"))
            .count(),
        CLIENTS - cap,
        "exactly the connections past the cap were refused"
    );

    // And the server serves as before.
    let (status, body) = get(&addr, "/healthz").await;
    assert_eq!(status, 200, "{body}");
    assert!(terminate(&mut server).success());
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = process::mongars(
        dir.path(),
        &[
            ("MONGARS_SERVER__PORT", "0"),
            ("MONGARS_LOGGING__FORMAT", "text"),
            ("MONGARS_MEMORY__ENABLED", "false"),
        ],
    )
    .arg("serve")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    first_line(&mut server);
    assert!(terminate(&mut server).success());
    let mut logs = String::new();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("monGARS listening"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in piped logs:\n{logs}"
    );
}

fn first_line(child: &mut std::process::Child) -> String {
    let mut out = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    String::from_utf8(line).unwrap()
}

async fn get(addr: &str, path: &str) -> (u16, String) {
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .send(),
    )
    .await
    .expect("answered")
    .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}
