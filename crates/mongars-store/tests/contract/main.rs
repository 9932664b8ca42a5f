//! Repository contract: the same checks against SQLite and PostgreSQL.
//!
//! PostgreSQL tests need `MONGARS_TEST_POSTGRES_URL` (set by `make test`,
//! which starts a server on loopback). Without it they are skipped with a
//! message, except under CI=true where a missing server is a failure.

#![allow(clippy::disallowed_methods)] // test harness variables, not settings

use chrono::Utc;
use mongars_core::domain::{NewTurn, SpeechTurn, TurnCompletion, TurnStatus};
use mongars_core::domain::{NewUser, Role, Username};
use mongars_core::ports::TurnRepository;
use mongars_core::ports::{FailureWindow, LoginThrottleStore, RepoError, UserRepository};
use mongars_store::{Database, SqlThrottleStore, SqlTurnRepository, SqlUserRepository, all_turns};
use std::sync::Arc;

mod api_keys;
#[path = "../common/mod.rs"]
mod common;
mod peers;
mod reply_profile;
mod training;

use api_keys::api_keys_are_stored_as_hashes_and_revoked;
use peers::peers_are_registered_updated_and_removed;
use reply_profile::a_reply_and_its_profile_are_stored_together;
use training::{
    adapters_need_approval_and_roll_back_in_order, consent_and_review_decide_what_enters_a_dataset,
};

contract!(
    peers_are_registered_updated_and_removed,
    users_are_unique_case_insensitively,
    list_is_sorted_and_hides_nothing,
    password_update_and_revocation,
    disable_revokes,
    first_admin_is_created_once_under_concurrency,
    throttle_counts_and_windows,
    throttle_counts_concurrent_failures,
    migrations_are_current_and_idempotent,
    turns_keep_the_message_then_the_reply,
    a_reply_and_its_profile_are_stored_together,
    recent_turns_filter_by_session_and_skip_unfinished,
    interrupted_turns_are_failed_by_owner_and_by_age,
    api_keys_are_stored_as_hashes_and_revoked,
    consent_and_review_decide_what_enters_a_dataset,
    adapters_need_approval_and_roll_back_in_order,
);

fn new_user(name: &str, role: Role) -> NewUser {
    NewUser {
        username: Username::parse(name).unwrap(),
        password_hash: format!("$argon2id$fake${name}"),
        role,
    }
}

async fn users_are_unique_case_insensitively(db: Database) {
    let repo = SqlUserRepository::new(db);
    let before = Utc::now() - chrono::Duration::seconds(1);
    let alice = repo.insert(new_user("Alice", Role::User)).await.unwrap();
    assert_eq!(alice.username, "Alice");
    assert_eq!(alice.role, Role::User);
    assert!(!alice.disabled);
    assert_eq!(alice.token_version, 0);
    assert!(alice.created_at >= before && alice.created_at <= Utc::now());
    assert_eq!(
        repo.insert(new_user("aLICE", Role::User))
            .await
            .unwrap_err(),
        RepoError::Duplicate
    );
    let found = repo.find_by_key("alice").await.unwrap().unwrap();
    assert_eq!(found.user, alice);
    assert_eq!(found.password_hash, "$argon2id$fake$Alice");
    assert!(repo.find_by_key("bob").await.unwrap().is_none());
}

async fn list_is_sorted_and_hides_nothing(db: Database) {
    let repo = SqlUserRepository::new(db);
    for name in ["carol", "Bob", "alice"] {
        repo.insert(new_user(name, Role::User)).await.unwrap();
    }
    repo.insert(new_user("root", Role::Admin)).await.unwrap();
    let names: Vec<String> = repo
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["alice", "Bob", "carol", "root"]);
    assert_eq!(repo.count_admins().await.unwrap(), 1);
}

async fn password_update_and_revocation(db: Database) {
    let repo = SqlUserRepository::new(db);
    let u = repo.insert(new_user("dave", Role::User)).await.unwrap();
    repo.update_password(u.id, "h2", false).await.unwrap();
    let s = repo.find_by_key("dave").await.unwrap().unwrap();
    assert_eq!((s.password_hash.as_str(), s.user.token_version), ("h2", 0));
    repo.update_password(u.id, "h3", true).await.unwrap();
    let s = repo.find_by_key("dave").await.unwrap().unwrap();
    assert_eq!((s.password_hash.as_str(), s.user.token_version), ("h3", 1));
    assert!(s.user.updated_at >= u.updated_at);
    let at = Utc::now();
    repo.record_login(u.id, at).await.unwrap();
    let s = repo.find_by_key("dave").await.unwrap().unwrap();
    let seen = s.user.last_login_at.unwrap();
    assert!((seen - at).num_milliseconds().abs() < 5, "{seen} vs {at}");
    assert!(repo.update_password(9999, "x", true).await.is_err());
}

async fn disable_revokes(db: Database) {
    let repo = SqlUserRepository::new(db);
    let u = repo.insert(new_user("erin", Role::User)).await.unwrap();
    repo.set_disabled(u.id, true).await.unwrap();
    let s = repo.find_by_key("erin").await.unwrap().unwrap();
    assert!(s.user.disabled);
    assert_eq!(s.user.token_version, 1);
    repo.set_disabled(u.id, false).await.unwrap();
    let s = repo.find_by_key("erin").await.unwrap().unwrap();
    assert!(!s.user.disabled);
    assert_eq!(s.user.token_version, 2);
}

async fn first_admin_is_created_once_under_concurrency(db: Database) {
    let repo = Arc::new(SqlUserRepository::new(db));
    let attempts = (0..6).map(|i| {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.insert_first_admin(new_user(&format!("admin{i}"), Role::Admin))
                .await
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|r| matches!(r, Ok(Some(_))))
        .count();
    assert_eq!(created, 1);
    assert_eq!(repo.count_admins().await.unwrap(), 1);
    assert!(
        repo.insert_first_admin(new_user("late", Role::Admin))
            .await
            .unwrap()
            .is_none()
    );
}

/// One key's count, through the store's (one or two keys) `count`.
async fn count1(t: &SqlThrottleStore, key: &str, now: i64, w: i64) -> FailureWindow {
    t.count(&[key], now, w).await.unwrap()[0]
}

async fn failures(t: &SqlThrottleStore, key: &str, now: i64, w: i64) -> Option<u32> {
    t.window(key, now, w).await.unwrap().map(|win| win.failures)
}

async fn throttle_counts_and_windows(db: Database) {
    let t = SqlThrottleStore::new(db);
    let (w, now) = (1_000i64, 1_700_000_000_000i64);
    assert!(t.window("user:a", now, w).await.unwrap().is_none());
    for i in 1..=3 {
        let win = count1(&t, "user:a", now + i, w).await;
        assert_eq!((win.failures, win.started_at_ms), (i as u32, now + 1));
    }
    assert_eq!(failures(&t, "user:a", now + 500, w).await, Some(3));
    // The window closes; the next attempt opens a new one.
    assert!(t.window("user:a", now + 1 + w, w).await.unwrap().is_none());
    let fresh = count1(&t, "user:a", now + 2 * w, w).await;
    assert_eq!((fresh.failures, fresh.started_at_ms), (1, now + 2 * w));
    count1(&t, "addr:1", now, w).await;
    count1(&t, "addr:2", now + 5 * w, w).await;
    assert_eq!(t.purge_expired(now + 5 * w, w).await.unwrap(), 2);
    assert!(t.window("addr:2", now + 5 * w, w).await.unwrap().is_some());
    // Two keys in one step, each with its own window, in the order asked.
    count1(&t, "addr:9", now, w).await;
    let both = t.count(&["user:c", "addr:9"], now + 1, w).await.unwrap();
    assert_eq!((both[0].failures, both[1].failures), (1, 2));
    assert_eq!(both[1].started_at_ms, now);
    // Settling forgets the username's count and takes one back from the address.
    t.settle("user:c", Some(("addr:9", now))).await.unwrap();
    assert_eq!(failures(&t, "user:c", now + 2, w).await, None);
    assert_eq!(failures(&t, "addr:9", now + 2, w).await, Some(1));
    let again = count1(&t, "user:c", now + 3, w).await;
    assert_eq!((again.failures, again.started_at_ms), (1, now + 3));
    // Taking back an attempt counts only in the window it was made in.
    let a = count1(&t, "user:b", now, w).await;
    count1(&t, "user:b", now, w).await;
    t.uncount("user:b", a.started_at_ms).await.unwrap();
    assert_eq!(failures(&t, "user:b", now, w).await, Some(1));
    t.uncount("user:b", a.started_at_ms - 1).await.unwrap();
    assert_eq!(failures(&t, "user:b", now, w).await, Some(1));
    t.uncount("user:b", a.started_at_ms).await.unwrap();
    t.uncount("user:b", a.started_at_ms).await.unwrap();
    assert_eq!(failures(&t, "user:b", now, w).await, Some(0));
}

async fn throttle_counts_concurrent_failures(db: Database) {
    let t = Arc::new(SqlThrottleStore::new(db));
    let now = 1_700_000_000_000i64;
    let tasks = (0..20).map(|_| {
        let t = t.clone();
        tokio::spawn(async move { t.count(&["user:z", "addr:z"], now, 60_000).await })
    });
    let mut seen: Vec<(u32, u32)> = futures_util::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| {
            let w = r.unwrap().unwrap();
            (w[0].failures, w[1].failures)
        })
        .collect();
    seen.sort();
    let expected: Vec<(u32, u32)> = (1..=20).map(|n| (n, n)).collect();
    assert_eq!(seen, expected, "each attempt its own count, on both keys");
    assert_eq!(failures(&t, "user:z", now, 60_000).await, Some(20));
}

async fn migrations_are_current_and_idempotent(db: Database) {
    let status = db.migration_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert!(status.applied.contains(&1));
    assert!(db.migrate().await.unwrap().is_empty());
    db.ping().await.unwrap();
}

pub(crate) async fn owner(db: &Database, name: &str) -> i64 {
    SqlUserRepository::new(db.clone())
        .insert(new_user(name, Role::User))
        .await
        .unwrap()
        .id
}

pub(crate) fn turn(
    id: &str,
    user_id: i64,
    session: Option<&str>,
    query: &str,
    secs: i64,
) -> NewTurn {
    NewTurn {
        id: id.into(),
        user_id,
        session_id: session.map(String::from),
        query: query.into(),
        created_at: Utc::now() + chrono::Duration::seconds(secs),
        owner: None,
        ordinals: Default::default(),
        trace: None,
        note: None,
    }
}

pub(crate) fn completion(text: &str) -> TurnCompletion {
    TurnCompletion {
        response: text.into(),
        model: "m".into(),
        prompt_tokens: 12,
        completion_tokens: 3,
        confidence: 0.75,
        ttft_ms: 20,
        generation_ms: 40,
        total_ms: 45,
        speech_turn: SpeechTurn {
            turn_id: "x".into(),
            text: text.into(),
            created_at: Utc::now(),
            segments: vec![],
            average_words_per_second: 2.6,
            tempo: 1.05,
        },
        completed_at: Utc::now(),
        working_until: Utc::now() + chrono::Duration::days(1),
    }
}

async fn turns_keep_the_message_then_the_reply(db: Database) {
    let uid = owner(&db, "talker").await;
    let repo = SqlTurnRepository::new(db.clone());
    repo.start(turn("t1", uid, Some("s"), "hello", 0))
        .await
        .unwrap();
    let stored = all_turns(&db, uid).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].status, stored[0].response.as_deref()),
        (TurnStatus::Pending, None)
    );
    repo.complete("t1", &completion("hi there")).await.unwrap();
    let t = &all_turns(&db, uid).await.unwrap()[0];
    assert_eq!(t.status, TurnStatus::Complete);
    assert_eq!(t.response.as_deref(), Some("hi there"));
    assert_eq!(
        (t.prompt_tokens, t.completion_tokens, t.confidence),
        (Some(12), Some(3), Some(0.75))
    );
    assert_eq!(t.speech_turn.as_ref().unwrap().tempo, 1.05);
    // A finished turn cannot be finished again.
    assert!(repo.complete("t1", &completion("again")).await.is_err());

    repo.start(turn("t2", uid, None, "will fail", 1))
        .await
        .unwrap();
    repo.fail("t2", "llm.backend_failed").await.unwrap();
    let t2 = &all_turns(&db, uid).await.unwrap()[1];
    assert_eq!(
        (t2.status, t2.query.as_str()),
        (TurnStatus::Failed, "will fail")
    );
    assert_eq!(t2.error_code.as_deref(), Some("llm.backend_failed"));
    assert!(t2.completed_at.is_some());
    // Unknown users are refused by the foreign key.
    assert!(
        repo.start(turn("t3", uid + 999, None, "x", 2))
            .await
            .is_err()
    );
}

async fn recent_turns_filter_by_session_and_skip_unfinished(db: Database) {
    let uid = owner(&db, "ana").await;
    let other = owner(&db, "ben").await;
    let repo = SqlTurnRepository::new(db.clone());
    for (i, session) in [Some("a"), Some("b"), Some("a"), None]
        .into_iter()
        .enumerate()
    {
        let id = format!("t{i}");
        repo.start(turn(&id, uid, session, &format!("q{i}"), i as i64))
            .await
            .unwrap();
        repo.complete(&id, &completion(&format!("r{i}")))
            .await
            .unwrap();
    }
    repo.start(turn("pending", uid, Some("a"), "unanswered", 10))
        .await
        .unwrap();
    repo.start(turn("theirs", other, Some("a"), "not yours", 11))
        .await
        .unwrap();
    repo.complete("theirs", &completion("x")).await.unwrap();

    let queries = |turns: Vec<mongars_core::domain::Turn>| {
        turns.into_iter().map(|t| t.query).collect::<Vec<_>>()
    };
    assert_eq!(
        queries(repo.recent(uid, None, 10, Utc::now()).await.unwrap()),
        ["q3", "q2", "q1", "q0"]
    );
    assert_eq!(
        queries(repo.recent(uid, Some("a"), 10, Utc::now()).await.unwrap()),
        ["q2", "q0"]
    );
    assert_eq!(
        queries(repo.recent(uid, None, 2, Utc::now()).await.unwrap()),
        ["q3", "q2"]
    );
    assert!(
        repo.recent(uid, Some("zzz"), 10, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(repo.count_complete(uid, None, Utc::now()).await.unwrap(), 4);
    assert_eq!(
        repo.count_complete(uid, Some("a"), Utc::now())
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        repo.count_complete(other, None, Utc::now()).await.unwrap(),
        1
    );
}

async fn interrupted_turns_are_failed_by_owner_and_by_age(db: Database) {
    use mongars_core::conversation::recovery::{INTERRUPTED, Liveness, fail_interrupted};
    let uid = owner(&db, "crashy").await;
    let repo = SqlTurnRepository::new(db.clone());
    let start = |id: &str, owner: Option<&str>, secs: i64| {
        let mut t = turn(id, uid, None, id, secs);
        t.owner = owner.map(String::from);
        t
    };
    repo.start(start("dead-1", Some("host/1/1"), 0))
        .await
        .unwrap();
    repo.start(start("dead-2", Some("host/1/1"), 0))
        .await
        .unwrap();
    repo.start(start("alive", Some("host/2/2"), 0))
        .await
        .unwrap();
    repo.start(start("far-old", Some("other/3/3"), -7200))
        .await
        .unwrap();
    repo.start(start("far-new", Some("other/3/3"), 0))
        .await
        .unwrap();
    repo.start(start("legacy-old", None, -7200)).await.unwrap();
    repo.start(start("done", Some("host/1/1"), 0))
        .await
        .unwrap();
    repo.complete("done", &completion("finished"))
        .await
        .unwrap();

    let mut owners = repo.pending_owners().await.unwrap();
    owners.sort();
    assert_eq!(owners, ["host/1/1", "host/2/2", "other/3/3"]);
    let liveness = |o: &str| match o {
        "host/1/1" => Liveness::Dead,
        "host/2/2" => Liveness::Alive,
        _ => Liveness::Unknown,
    };
    let stale_before = Utc::now() - chrono::Duration::hours(1);
    let failed = fail_interrupted(&repo, liveness, stale_before)
        .await
        .unwrap();
    assert_eq!(failed, 4, "two of the dead owner, and the two old ones");
    let by_id: std::collections::HashMap<String, (TurnStatus, Option<String>)> =
        all_turns(&db, uid)
            .await
            .unwrap()
            .into_iter()
            .map(|t| (t.id, (t.status, t.error_code)))
            .collect();
    for id in ["dead-1", "dead-2", "far-old", "legacy-old"] {
        assert_eq!(
            by_id[id],
            (TurnStatus::Failed, Some(INTERRUPTED.to_string())),
            "{id}"
        );
    }
    for id in ["alive", "far-new"] {
        assert_eq!(by_id[id].0, TurnStatus::Pending, "{id}");
    }
    assert_eq!(by_id["done"].0, TurnStatus::Complete);
    // Nothing more to do the second time.
    assert_eq!(
        fail_interrupted(&repo, liveness, stale_before)
            .await
            .unwrap(),
        0
    );
    let counts = repo.count_by_status().await.unwrap();
    let pending: i64 = counts
        .iter()
        .filter(|(s, _, _)| s == "pending")
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(pending, 2);
}
