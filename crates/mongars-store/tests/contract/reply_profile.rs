//! A turn's reply and its user's style profile, stored in one transaction.

use crate::common::profile_save as save;
use crate::{completion, owner, turn};
use mongars_core::domain::TurnStatus;
use mongars_core::ports::{ProfileRepository, StoredProfile, TurnRepository};
use mongars_store::{Database, SqlMemoryRepository, SqlTurnRepository, all_turns};

fn stored(json: &str, version: u64) -> Option<StoredProfile> {
    Some(StoredProfile {
        json: json.into(),
        version,
    })
}

pub async fn a_reply_and_its_profile_are_stored_together(db: Database) {
    let ana = owner(&db, "ana").await;
    let turns = SqlTurnRepository::new(db.clone());
    let profiles = SqlMemoryRepository::new(db.clone());
    let status = |db: Database, i: usize| async move {
        let t = &all_turns(&db, ana).await.unwrap()[i];
        (t.status, t.response.clone())
    };

    // A first profile, saved with the first reply.
    turns
        .start(turn("p1", ana, None, "hello", 0))
        .await
        .unwrap();
    let first = save(ana, "{\"messages\":1}", None);
    assert!(
        turns
            .complete_with_profile("p1", &completion("hi"), &first)
            .await
            .unwrap()
    );
    assert_eq!(
        status(db.clone(), 0).await,
        (TurnStatus::Complete, Some("hi".into()))
    );
    assert_eq!(
        profiles.load(ana).await.unwrap(),
        stored("{\"messages\":1}", 0)
    );

    // Saved over the version it was read at.
    turns
        .start(turn("p2", ana, None, "again", 1))
        .await
        .unwrap();
    let second = save(ana, "{\"messages\":2}", Some(0));
    assert!(
        turns
            .complete_with_profile("p2", &completion("yes"), &second)
            .await
            .unwrap()
    );
    assert_eq!(
        profiles.load(ana).await.unwrap(),
        stored("{\"messages\":2}", 1)
    );

    // Another process saved in between: the reply is stored, the profile
    // is left as that process saved it, and the caller is told.
    turns
        .start(turn("p3", ana, None, "raced", 2))
        .await
        .unwrap();
    assert!(
        profiles
            .save(&save(ana, "{\"messages\":3}", Some(1)))
            .await
            .unwrap()
    );
    let stale = save(ana, "{\"messages\":9}", Some(1));
    assert!(
        !turns
            .complete_with_profile("p3", &completion("ok"), &stale)
            .await
            .unwrap()
    );
    assert_eq!(
        status(db.clone(), 2).await,
        (TurnStatus::Complete, Some("ok".into()))
    );
    assert_eq!(
        profiles.load(ana).await.unwrap(),
        stored("{\"messages\":3}", 2)
    );

    // A turn that is not pending (finished, failed, unknown) takes nothing:
    // the profile save is rolled back with it.
    turns
        .start(turn("p4", ana, None, "fails", 3))
        .await
        .unwrap();
    turns.fail("p4", "llm.backend_failed").await.unwrap();
    for id in ["p3", "p4", "nope"] {
        let current = save(ana, "{\"messages\":7}", Some(2));
        assert!(
            turns
                .complete_with_profile(id, &completion("late"), &current)
                .await
                .is_err(),
            "{id}"
        );
    }
    assert_eq!(
        profiles.load(ana).await.unwrap(),
        stored("{\"messages\":3}", 2)
    );
    assert_eq!(status(db.clone(), 3).await, (TurnStatus::Failed, None));
}
