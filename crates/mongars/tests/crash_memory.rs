//! `kill -9` of a real `mongars serve` in the middle of memory writes, on
//! SQLite and on PostgreSQL: 40 users' worth of memories created and then
//! edited at once (each write embeds the text and stores text and vector
//! together), the server killed once a drawn number of them have been
//! acknowledged. After each restart: every memory whose creation was
//! acknowledged is there, with the text of its last acknowledged edit when
//! no other write touched it (a creation that restates an existing fact
//! updates that one instead, so a memory may also hold another write's
//! text, never anything that was not written), and the stored data holds
//! together (`integrity_problems`: the engine's own check, vectors whole
//! and of one size).
#![allow(clippy::disallowed_methods)] // test harness variables, not settings

mod process;

use process::{login, open_db, start_server, terminate};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const WRITERS: usize = 40;
const ROUNDS: u64 = 5;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_memory_writes_keeps_every_acknowledged_one_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("memories.db").display());
    rounds(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_memory_writes_keeps_every_acknowledged_one_on_postgres() {
    let Some(admin) = process::postgres_admin() else {
        return;
    };
    let url = mongars_store::testing::create_postgres_database(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    rounds(dir.path(), &url).await;
}

/// What the client was told of one memory.
#[derive(Debug, Default)]
struct Told {
    created: Option<String>,
    /// Whether the edit was acknowledged.
    edited: bool,
}

const THINGS: [&str; 10] = [
    "bicycle", "kitchen", "guitar", "garden", "laptop", "sailboat", "violin", "attic", "tractor",
    "aquarium",
];
const COLOURS: [&str; 10] = [
    "blue", "crimson", "yellow", "olive", "silver", "orange", "violet", "teal", "ivory", "black",
];
const HABITS: [&str; 10] = [
    "keep bees",
    "swim at dawn",
    "collect stamps",
    "bake sourdough",
    "climb hills",
    "knit scarves",
    "repair clocks",
    "grow tomatoes",
    "sing in a choir",
    "play chess",
];
const DAYS: [&str; 5] = ["Monday", "Wednesday", "Friday", "Saturday", "Sunday"];

/// Distinct facts for writer `i` of `round`.
fn first_text(round: u64, i: usize) -> String {
    let k = (round as usize) * WRITERS + i;
    format!(
        "My {} number {k} is painted {}.",
        THINGS[k % 10],
        COLOURS[(k / 10) % 10]
    )
}

fn second_text(round: u64, i: usize) -> String {
    let k = (round as usize) * WRITERS + i;
    format!("I {} every {} ({k}).", HABITS[k % 10], DAYS[(k / 10) % 5])
}

async fn rounds(dir: &std::path::Path, db_url: &str) {
    let env = [
        ("MONGARS_DATABASE__URL", db_url),
        ("MONGARS_SERVER__PORT", "0"),
        (
            "MONGARS_AUTH__JWT_SECRET",
            "crash-test-secret-crash-test-secret-0123456",
        ),
        ("MONGARS_BOOTSTRAP__ADMIN_USERNAME", "root"),
        ("MONGARS_BOOTSTRAP__ADMIN_PASSWORD", "secret-password"),
        // No generation here: a backend that is never called, so that the
        // embedded model is not loaded.
        ("MONGARS_LLM__BACKENDS__OPENAI__URL", "http://127.0.0.1:9"),
        ("MONGARS_LLM__BACKENDS__OPENAI__MODEL", "unused"),
        (
            "MONGARS_LLM__PROFILES__DEFAULT__GENERAL__BACKENDS",
            "openai",
        ),
        ("MONGARS_LLM__PROFILES__DEFAULT__CODING__BACKENDS", "openai"),
    ];
    // A seeded draw of how many acknowledgements come before the kill.
    let mut seed = 0x6d65_6d6f_7279_u64;
    let mut draw = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    // Per memory id: every writer told of it (its two texts and whether
    // its edit was acknowledged).
    let mut acknowledged: BTreeMap<String, Vec<(String, String, bool)>> = BTreeMap::new();
    let mut written: BTreeSet<String> = BTreeSet::new();
    // Creations never acknowledged: they may have restated (so rewritten)
    // any memory before the kill.
    let mut in_flight: BTreeSet<String> = BTreeSet::new();
    for round in 1..=ROUNDS {
        let (mut server, addr, _lines) = start_server(dir, &env);
        let base = format!("http://{addr}");
        let client = reqwest::Client::new();
        let token = login(&client, &base).await;
        let (tx, mut acks) = tokio::sync::mpsc::unbounded_channel::<(usize, Told)>();
        let writers: Vec<_> = (0..WRITERS)
            .map(|i| {
                let (client, base, token, tx) =
                    (client.clone(), base.clone(), token.clone(), tx.clone());
                tokio::spawn(async move {
                    let mut told = Told::default();
                    let url = format!("{base}/api/v1/memories");
                    let made = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({"text": first_text(round, i)}))
                        .send()
                        .await;
                    // 201: a new memory; 200: it restated one and updated it.
                    if let Ok(r) = made
                        && matches!(r.status().as_u16(), 200 | 201)
                        && let Ok(body) = r.json::<Value>().await
                    {
                        told.created = body["id"].as_str().map(str::to_string);
                    }
                    if let Some(id) = &told.created {
                        let _ = tx.send((
                            i,
                            Told {
                                created: Some(id.clone()),
                                edited: false,
                            },
                        ));
                        let edit = client
                            .patch(format!("{url}/{id}"))
                            .bearer_auth(&token)
                            .json(&json!({"text": second_text(round, i)}))
                            .send()
                            .await;
                        told.edited = edit.is_ok_and(|r| r.status() == 200);
                    }
                    (i, told)
                })
            })
            .collect();
        drop(tx);
        // Killed once a drawn number of creations (none to all) came back.
        let wanted = draw(WRITERS as u64 + 1) as usize;
        for _ in 0..wanted {
            tokio::time::timeout(Duration::from_secs(60), acks.recv())
                .await
                .expect("memory writes are acknowledged")
                .expect("a writer acknowledges before it ends");
        }
        server.kill().unwrap();
        server.wait().unwrap();
        // Every writer ends: acknowledged, refused or cut off.
        for w in writers {
            let (i, told) = w.await.unwrap();
            written.insert(first_text(round, i));
            written.insert(second_text(round, i));
            if told.created.is_none() {
                in_flight.insert(first_text(round, i));
            }
            if let Some(id) = told.created {
                acknowledged.entry(id).or_default().push((
                    first_text(round, i),
                    second_text(round, i),
                    told.edited,
                ));
            }
        }

        let (mut server, addr, _lines) = start_server(dir, &env);
        let base = format!("http://{addr}");
        let token = login(&client, &base).await;
        let listed: Value = client
            .get(format!("{base}/api/v1/memories?limit=500"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored: BTreeMap<String, String> = listed["memories"]
            .as_array()
            .or_else(|| listed.as_array())
            .expect("a list of memories")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().unwrap().to_string(),
                    m["text"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for (id, writers) in &acknowledged {
            let text = stored
                .get(id)
                .unwrap_or_else(|| panic!("round {round}: acknowledged memory {id} lost"));
            assert!(
                written.contains(text),
                "round {round}: {text:?} was never written"
            );
            if let [(first, second, edited)] = writers.as_slice()
                && !in_flight.contains(text)
            {
                if *edited {
                    assert_eq!(text, second, "round {round}: acknowledged edit lost");
                } else {
                    assert!(text == first || text == second, "round {round}: {text}");
                }
            }
        }
        let db = open_db(dir, db_url).await;
        let problems = mongars_store::integrity_problems(&db, false).await.unwrap();
        db.close().await;
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        assert!(terminate(&mut server).success());
    }
    assert!(!acknowledged.is_empty(), "the draws left nothing to check");
}
