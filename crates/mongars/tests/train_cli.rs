//! `mongars train run` as an operator runs it, on the real embedded model:
//! a file of samples in, an adapter with its record out; a run continues
//! from its checkpoint; bad files are refused naming the line.

mod process;

use process::mongars;
use std::path::Path;
use std::process::Output;

fn run(dir: &Path, args: &[&str]) -> Output {
    mongars(
        dir,
        &[
            ("MONGARS_TRAINING__LAYERS", "2"),
            ("MONGARS_TRAINING__ACCUMULATION", "2"),
        ],
    )
    .args(args)
    .output()
    .expect("spawn mongars")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_run_writes_an_adapter_and_its_record_and_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("samples.jsonl");
    let mut lines: Vec<String> = mongars_train::corpus::style_corpus(4, 24)
        .iter()
        .map(|(q, a)| serde_json::json!({"prompt": q, "response": a}).to_string())
        .collect();
    lines[0] = serde_json::json!({
        "prompt": "Mail me at ana@example.org with the answer.",
        "response": "done. over."
    })
    .to_string();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = dir.path().join("run");
    let (data_s, out_s) = (data.to_str().unwrap(), out.to_str().unwrap());

    let first = run(
        dir.path(),
        &[
            "train", "run", "--data", data_s, "--out", out_s, "--steps", "2",
        ],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    assert!(stdout.contains("step    2/2"), "{stdout}");
    assert!(stdout.contains("1 samples had personal data"), "{stdout}");
    assert!(out.join("adapter.gguf").is_file() && out.join("checkpoint.safetensors").is_file());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter.json")).unwrap()).unwrap();
    assert_eq!(record["steps"], 2);
    assert_eq!(record["samples_redacted"], 1);
    assert_eq!(
        record["samples_train"].as_u64().unwrap() + record["samples_held_out"].as_u64().unwrap(),
        24
    );
    assert_eq!(record["base_model_sha256"].as_str().unwrap().len(), 64);
    assert!(
        record["held_out_perplexity_after"].as_f64().unwrap()
            < record["held_out_perplexity_before"].as_f64().unwrap()
    );
    assert!(["candidate", "rejected"].contains(&record["status"].as_str().unwrap()));

    let resumed = run(
        dir.path(),
        &[
            "train", "run", "--data", data_s, "--out", out_s, "--steps", "3", "--resume",
        ],
    );
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let stdout = text(&resumed.stdout);
    assert!(
        stdout.contains("step    3/3") && !stdout.contains("step    1/3"),
        "{stdout}"
    );
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter.json")).unwrap()).unwrap();
    assert_eq!(record["steps"], 3);
}

#[test]
fn an_mntp_run_trains_an_embedding_adapter_gated_on_masked_perplexity() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("samples.jsonl");
    let lines: Vec<String> = mongars_train::corpus::style_corpus(5, 16)
        .iter()
        .map(|(q, a)| serde_json::json!({"prompt": q, "response": a}).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let out = dir.path().join("mntp");
    let (data_s, out_s) = (data.to_str().unwrap(), out.to_str().unwrap());
    let done = run(
        dir.path(),
        &[
            "train",
            "run",
            "--data",
            data_s,
            "--out",
            out_s,
            "--steps",
            "2",
            "--objective",
            "mntp",
        ],
    );
    assert!(done.status.success(), "{}", text(&done.stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("adapter.json")).unwrap()).unwrap();
    assert_eq!(record["objective"], "mntp");
    assert_eq!(record["steps"], 2);
    for key in ["held_out_perplexity_before", "held_out_perplexity_after"] {
        let v = record[key].as_f64().unwrap();
        assert!(v.is_finite() && v > 1.0, "{key}: {v}");
    }
    assert!(out.join("adapter.gguf").is_file());
    let refused = run(
        dir.path(),
        &["train", "run", "--dataset", "latest", "--objective", "mntp"],
    );
    assert!(!refused.status.success());
    assert!(text(&refused.stderr).contains("MNTP runs take a file"));
}

#[test]
fn bad_sample_files_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("bad.jsonl");
    std::fs::write(
        &data,
        "{\"prompt\": \"hi\", \"response\": \"hello\"}\n{\"prompt\": \"no answer\"}\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["train", "run", "--data", data.to_str().unwrap()],
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("line 2") && err.contains("response"), "{err}");
    std::fs::write(&data, "{\"prompt\": \"\", \"response\": \"x\"}\n").unwrap();
    let out = run(
        dir.path(),
        &["train", "run", "--data", data.to_str().unwrap()],
    );
    assert!(
        text(&out.stderr).contains("line 1: prompt must have"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&data, "{\"prompt\": \"a\", \"response\": \"b\"}\n").unwrap();
    let out = run(
        dir.path(),
        &["train", "run", "--data", data.to_str().unwrap()],
    );
    assert!(
        text(&out.stderr).contains("both need at least one"),
        "{}",
        text(&out.stderr)
    );
}

/// Samples of a consenting user, written where the child process's
/// database will be (`data/mongars.db` under `dir`).
async fn seed_samples(dir: &Path) {
    use mongars_core::domain::{NewUser, Role, Username};
    use mongars_core::ports::UserRepository;
    let mut s = mongars_config::defaults().unwrap();
    s.data_dir = dir.join("data");
    let db = mongars::wiring::database::open_database(&s).await.unwrap();
    db.migrate().await.unwrap();
    let user = mongars_store::SqlUserRepository::new(db.clone())
        .insert(NewUser {
            username: Username::parse("ana").unwrap(),
            password_hash: "$argon2id$unused".into(),
            role: Role::User,
        })
        .await
        .unwrap();
    let clock = mongars::wiring::system_clock();
    let t = mongars::wiring::training::training_state(&s, &db, None, &clock);
    t.curation.set_consent(user.id, true).await.unwrap();
    for (q, a) in mongars_train::corpus::style_corpus(6, 12) {
        t.curation.example(user.id, "ana", &q, &a).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dataset_version_trains_to_a_registered_adapter_operators_roll_out() {
    let dir = tempfile::tempdir().unwrap();
    seed_samples(dir.path()).await;
    let ok = |args: &[&str]| {
        let out = run(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let built = ok(&["train", "dataset", "build"]);
    assert!(built.contains("(version 1): 12 samples"), "{built}");
    let id = built.split_whitespace().nth(1).unwrap().to_string();
    assert!(ok(&["train", "dataset", "list"]).contains(&id));
    let export = dir.path().join("v1.jsonl");
    ok(&[
        "train",
        "dataset",
        "export",
        &id,
        "--out",
        export.to_str().unwrap(),
    ]);
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), 12);
    assert!(lines.lines().all(|l| l.contains("over.")));

    let trained = ok(&["train", "run", "--dataset", "latest", "--steps", "30"]);
    assert!(trained.contains("step   30/30"), "{trained}");
    let listed = ok(&["adapter", "list"]);
    if trained.contains("rejected") {
        // The gate is the run's to decide; nothing was registered.
        assert!(listed.contains("no adapters yet"), "{listed}");
        return;
    }
    let adapter = trained
        .split("candidate adapter ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap()
        .to_string();
    assert!(
        listed.contains(&adapter) && listed.contains("candidate"),
        "{listed}"
    );
    let refused = run(dir.path(), &["adapter", "activate", &adapter]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("approve it"),
        "{}",
        text(&refused.stderr)
    );
    ok(&["adapter", "approve", &adapter]);
    assert!(ok(&["adapter", "activate", &adapter]).contains("is active"));
    assert!(ok(&["adapter", "list"]).contains("active"));
    assert!(ok(&["adapter", "rollback"]).contains("bare model"));
    assert!(ok(&["adapter", "list"]).contains("retired"));
}
