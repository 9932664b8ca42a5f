//! Curation and the adapter registry on each engine, through the core's
//! services: consent decides, personal data holds a sample for review,
//! dataset versions are immutable copies, and activation follows approval.

use super::{completion, owner, turn};
use async_trait::async_trait;
use mongars_core::CoreError;
use mongars_core::ports::{SystemClock, TurnRepository};
use mongars_core::training::curation::{CurationOptions, CurationService};
use mongars_core::training::model::{AdapterStatus, Rating, SampleStatus, Split};
use mongars_core::training::registry::{AdapterHost, AdapterRegistry, NewAdapter};
use mongars_store::{Database, SqlAdapterRepository, SqlCurationRepository, SqlTurnRepository};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn curation(db: &Database) -> CurationService {
    CurationService::new(
        Arc::new(SqlCurationRepository::new(db.clone())),
        None,
        Arc::new(SystemClock),
        CurationOptions {
            seed: 7,
            held_out_share: 0.2,
        },
    )
}

async fn complete_turn(db: &Database, id: &str, user: i64, query: &str, reply: &str) {
    let turns = SqlTurnRepository::new(db.clone());
    turns.start(turn(id, user, None, query, 0)).await.unwrap();
    turns.complete(id, &completion(reply)).await.unwrap();
}

pub(crate) async fn consent_and_review_decide_what_enters_a_dataset(db: Database) {
    let ana = owner(&db, "ana").await;
    let ben = owner(&db, "ben").await;
    let c = curation(&db);
    complete_turn(&db, "t-ana", ana, "What is two plus two?", "Four.").await;
    complete_turn(&db, "t-ben", ben, "Name a colour", "Blue.").await;

    // No consent: the rating is kept, nothing becomes a sample.
    assert!(!c.consent(ana).await.unwrap());
    let out = c
        .feedback(ana, "ana", "t-ana", Rating::Up, None)
        .await
        .unwrap();
    assert!(out.sample.is_none());
    let e = c.example(ana, "ana", "hi", "hello").await.unwrap_err();
    assert_eq!(e.code(), "training.consent_required");
    // Someone else's turn is not found.
    let e = c
        .feedback(ben, "ben", "t-ana", Rating::Up, None)
        .await
        .unwrap_err();
    assert!(matches!(e, CoreError::NotFound(_)));

    c.set_consent(ana, true).await.unwrap();
    c.set_consent(ben, true).await.unwrap();
    let up = c
        .feedback(ana, "ana", "t-ana", Rating::Up, None)
        .await
        .unwrap();
    let s = up.sample.unwrap();
    assert_eq!(
        (s.prompt.as_str(), s.response.as_str()),
        ("What is two plus two?", "Four.")
    );
    assert_eq!(s.status, SampleStatus::Ready);
    // A correction replaces the turn's sample; personal data holds it.
    let fixed = c
        .feedback(
            ana,
            "ana",
            "t-ana",
            Rating::Down,
            Some("4. Write to ana@example.org."),
        )
        .await
        .unwrap()
        .sample
        .unwrap();
    assert_eq!(fixed.response, "4. Write to [EMAIL].");
    assert_eq!(fixed.status, SampleStatus::Held);
    assert_eq!(fixed.pii, ["email"]);
    let counts = c.counts().await.unwrap();
    assert_eq!((counts.ready, counts.held), (0, 1));
    let ex = c.example(ben, "ben", "Say hi, ben", "Hi!").await.unwrap();
    assert_eq!(ex.prompt, "Say hi, [NAME]", "the account name is replaced");
    assert_eq!(ex.status, SampleStatus::Held);
    let plain = c
        .example(ben, "ben", "Colour of the sky?", "Blue.")
        .await
        .unwrap();
    assert_eq!(plain.status, SampleStatus::Ready);

    // One ready sample: too few for a dataset.
    let e = c.build_dataset(None).await.unwrap_err();
    assert_eq!(e.code(), "training.not_enough_samples");
    let queue = c.review_queue(10).await.unwrap();
    assert_eq!(queue.len(), 2);
    let approved = c.review(&fixed.id, true, ana).await.unwrap();
    assert_eq!(approved.status, SampleStatus::Ready);
    assert_eq!(approved.response, "4. Write to [EMAIL].");
    c.review(&ex.id, false, ana).await.unwrap();
    assert!(matches!(
        c.review(&ex.id, true, ana).await,
        Err(CoreError::NotFound(_))
    ));

    let d1 = c.build_dataset(Some(ana)).await.unwrap();
    assert_eq!((d1.version, d1.samples), (1, 2));
    assert_eq!(d1.train + d1.held_out, 2);
    assert!(
        d1.train >= 1 && d1.held_out >= 1,
        "both parts have a sample"
    );
    let (again, items) = c.dataset(&d1.id).await.unwrap();
    assert_eq!(again, d1);
    assert_eq!(
        mongars_core::training::curation::content_hash(&items),
        d1.content_hash
    );
    assert!(items.iter().all(|i| !i.response.contains('@')));
    assert!(items.iter().any(|i| i.split == Split::HeldOut));

    // Withdrawing consent deletes the samples and keeps them out of the
    // next version; the built version does not change.
    assert_eq!(
        c.set_consent(ben, false).await.unwrap(),
        2,
        "the ready and the dropped one"
    );
    let e = c.build_dataset(None).await.unwrap_err();
    assert_eq!(e.code(), "training.not_enough_samples");
    let (_, still) = c.dataset(&d1.id).await.unwrap();
    assert_eq!(still, items);
    assert_eq!(c.datasets().await.unwrap().len(), 1);
}

/// An engine that records what it was switched to.
#[derive(Default)]
struct Host(Mutex<Option<String>>);

#[async_trait]
impl AdapterHost for Host {
    async fn switch(&self, adapter: Option<(&str, &Path)>) -> Result<Duration, CoreError> {
        if let Some((_, path)) = adapter {
            assert!(path.is_file());
        }
        *self.0.lock().unwrap() = adapter.map(|(id, _)| id.to_string());
        Ok(Duration::from_millis(1))
    }

    fn active(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) async fn adapters_need_approval_and_roll_back_in_order(db: Database) {
    let dir = tempfile::tempdir().unwrap();
    let host = Arc::new(Host::default());
    let registry = AdapterRegistry::new(
        Arc::new(SqlAdapterRepository::new(db.clone())),
        dir.path().join("adapters"),
        Some(host.clone()),
        Arc::new(SystemClock),
    );
    let file = dir.path().join("a.gguf");
    std::fs::write(&file, b"GGUF adapter bytes").unwrap();
    let new = || NewAdapter {
        source: file.clone(),
        base_model_sha256: "base".into(),
        dataset_hash: "data".into(),
        run_id: None,
        metrics: serde_json::json!({"held_out_perplexity_after": 3.5}),
    };
    let a = registry.register(new()).await.unwrap();
    let b = registry.register(new()).await.unwrap();
    assert_eq!((a.version, b.version), (1, 2));
    assert_eq!(a.status, AdapterStatus::Candidate);
    assert_eq!(a.metrics["held_out_perplexity_after"], 3.5);
    let listed: Vec<i64> = registry
        .list()
        .await
        .unwrap()
        .iter()
        .map(|x| x.version)
        .collect();
    assert_eq!(listed, [2, 1]);

    // Nothing serves unapproved.
    let e = registry.activate(&a.id, 1).await.unwrap_err();
    assert_eq!(e.code(), "adapter.not_approved");
    assert_eq!(host.active(), None);
    let e = registry.rollback().await.unwrap_err();
    assert_eq!(e.code(), "adapter.nothing_to_roll_back");

    registry.approve(&a.id, 1).await.unwrap();
    registry.approve(&b.id, 1).await.unwrap();
    let on = registry.activate(&a.id, 1).await.unwrap();
    assert_eq!(on.active.unwrap().status, AdapterStatus::Active);
    assert_eq!(host.active().as_deref(), Some(a.id.as_str()));
    registry.activate(&b.id, 1).await.unwrap();
    assert_eq!(
        registry.get(&a.id).await.unwrap().status,
        AdapterStatus::Retired
    );
    let e = registry.reject(&b.id).await.unwrap_err();
    assert_eq!(e.code(), "adapter.active");

    // Rollback walks the activations back: b -> a -> the bare model.
    let back = registry.rollback().await.unwrap();
    assert_eq!(back.active.unwrap().id, a.id);
    assert_eq!(host.active().as_deref(), Some(a.id.as_str()));
    assert_eq!(
        registry.get(&b.id).await.unwrap().status,
        AdapterStatus::Retired
    );
    let back = registry.rollback().await.unwrap();
    assert!(back.active.is_none());
    assert_eq!(host.active(), None);
    assert_eq!(registry.active().await.unwrap().0, None);

    // A node that missed a change catches up; a changed file is refused.
    registry.activate(&b.id, 1).await.unwrap();
    *host.0.lock().unwrap() = None;
    assert!(registry.reconcile().await.unwrap());
    assert_eq!(host.active().as_deref(), Some(b.id.as_str()));
    assert!(!registry.reconcile().await.unwrap());
    std::fs::write(dir.path().join("adapters").join(&a.file), b"tampered").unwrap();
    let e = registry.activate(&a.id, 1).await.unwrap_err();
    assert_eq!(e.code(), "adapter.file_changed");
    assert_eq!(host.active().as_deref(), Some(b.id.as_str()));
}
