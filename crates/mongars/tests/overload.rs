//! A real `mongars serve` on the embedded model, and 40 chats at once where
//! the engine can take only a few in time: every chat is answered, either
//! 200 with its reply or 503 `llm.overloaded` with `Retry-After` (never a
//! timeout), `/healthz` and `/ready` answer 200 throughout, and the database
//! holds every accepted reply complete, none pending, and no refused chat
//! but as failed with the refusal's code.
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod process;

use process::{login, start_server, status_counts, terminate};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

const CHATS: usize = 40;

#[tokio::test(flavor = "multi_thread")]
async fn more_chats_than_the_engine_can_serve_get_503_at_once_and_probes_stay_up() {
    if !process::embedded_model_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("overload.db");
    let db_url = format!("sqlite://{}", db.display());
    let env = [
        ("MONGARS_DATABASE__URL", db_url.as_str()),
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "overload-test-secret-overload-test-0123456",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_BURST", "1000"),
        ("MONGARS_CONVERSATION__RATE_LIMIT_PER_MINUTE", "60000"),
        ("MONGARS_LLM__CACHE__ENABLED", "false"),
        ("MONGARS_LLM__EMBEDDED__PARALLEL", "2"),
        // Any real reply takes longer than this: once one has been
        // measured, a chat that finds both slots taken cannot start in time.
        ("MONGARS_LLM__EMBEDDED__MAX_QUEUE_WAIT_MS", "1"),
        ("MONGARS_LLM__PROFILES__DEFAULT__GENERAL__MAX_TOKENS", "24"),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__MAX_TOKENS", "24"),
    ];
    let (mut server, addr, _lines) = start_server(dir.path(), &env);
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let token = login(&client, &base).await;
    let (status, _, _) = chat(&client, &base, &token, "Say hello.").await;
    assert_eq!(status, 200, "the first chat is served");

    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        tokio::spawn(async move {
            let mut probes = 0;
            while !stop.load(Ordering::SeqCst) {
                for path in ["healthz", "ready"] {
                    let r = client.get(format!("{base}/{path}")).send().await.unwrap();
                    assert_eq!(r.status(), 200, "/{path} under overload");
                    probes += 1;
                }
                tokio::task::yield_now().await;
            }
            probes
        })
    };
    let chats: Vec<_> = (0..CHATS)
        .map(|i| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                chat(&client, &base, &token, &format!("Question number {i}?")).await
            })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for c in chats {
        let (status, retry_after, body) = c.await.unwrap();
        match status {
            200 => {
                assert!(
                    !body["response"].as_str().unwrap_or("").is_empty(),
                    "{body}"
                );
                served += 1;
            }
            503 => {
                assert_eq!(body["code"], "llm.overloaded", "{body}");
                let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
                assert!(secs >= 1);
                refused += 1;
            }
            other => panic!("a chat was answered {other}: {body}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    assert!(prober.await.unwrap() > 0);
    assert!(served >= 1, "the free slots were used");
    assert!(
        refused >= 1,
        "{CHATS} chats on two slots: some must be refused"
    );
    assert!(terminate(&mut server).success());

    // A refused chat is refused before its turn is stored, or, when the
    // engine filled up in between, stored failed with the refusal's code.
    let counts = status_counts(dir.path(), &db_url).await;
    assert_eq!(counts.get("pending"), None, "{counts:?}");
    assert_eq!(counts.get("complete"), Some(&(served + 1)), "{counts:?}");
    let failed = counts.get("failed:llm.overloaded").copied().unwrap_or(0);
    assert!(failed <= refused, "{counts:?}");
    assert_eq!(
        counts.values().sum::<usize>(),
        served + 1 + failed,
        "{counts:?}"
    );
}

/// Status, `Retry-After` and body of one chat.
async fn chat(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    message: &str,
) -> (u16, Option<String>, Value) {
    let resp = client
        .post(format!("{base}/api/v1/conversation/chat"))
        .bearer_auth(token)
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (
        status,
        retry_after,
        resp.json().await.unwrap_or(Value::Null),
    )
}
