//! Memory storage contract on SQLite and PostgreSQL: facts and turn vectors,
//! revisions, supersession, working memory, traces and forgetting a user.

use chrono::{Duration, Utc};
use mongars_core::domain::{
    MemoryKind, MemoryUpdate, NewMemory, NewTurn, NewUser, Role, SpeechTurn, TurnCompletion,
    Username,
};
use mongars_core::ports::{
    MemoryRepository, ProfileRepository, StoredProfile, TurnRepository, UserRepository,
};
use mongars_store::{Database, SqlMemoryRepository, SqlTurnRepository, SqlUserRepository};

mod common;

contract!(
    memories_round_trip_with_revisions,
    superseded_and_expired_memories_are_not_live,
    working_memory_is_bounded_and_purged,
    a_trim_is_due_every_slack_turns_past_the_bound,
    a_turn_s_place_steps_from_the_newest_and_counts_only_when_unknown,
    forgetting_a_user_removes_everything_of_theirs,
);

async fn user(db: &Database, name: &str) -> i64 {
    SqlUserRepository::new(db.clone())
        .insert(NewUser {
            username: Username::parse(name).unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap()
        .id
}

fn fact(id: &str, user_id: i64, text: &str, slot: Option<&str>, v: Vec<f32>) -> NewMemory {
    NewMemory {
        id: id.into(),
        user_id,
        kind: MemoryKind::Fact,
        text: text.into(),
        slot: slot.map(String::from),
        source: "turn-1".into(),
        embedding: v,
        at: Utc::now(),
        expires_at: None,
    }
}

async fn memories_round_trip_with_revisions(db: Database) {
    let ana = user(&db, "ana").await;
    let ben = user(&db, "ben").await;
    let repo = SqlMemoryRepository::new(db.clone());
    assert_eq!(repo.revision(ana).await.unwrap(), 0);
    let r1 = repo
        .insert(fact(
            "m1",
            ana,
            "The user's name is Ana.",
            Some("name"),
            vec![1.0, 0.0, 0.5],
        ))
        .await
        .unwrap();
    let r2 = repo
        .insert(fact(
            "m2",
            ana,
            "The user likes tea.",
            Some("likes:tea"),
            vec![0.0, 1.0, 0.0],
        ))
        .await
        .unwrap();
    assert_eq!((r1, r2), (1, 2));
    repo.insert(fact(
        "b1",
        ben,
        "The user's name is Ben.",
        Some("name"),
        vec![1.0, 0.0, 0.0],
    ))
    .await
    .unwrap();
    assert_eq!(repo.revision(ben).await.unwrap(), 1);
    let (rev, vectors) = repo.vectors(ana, Utc::now()).await.unwrap();
    assert_eq!(rev, 2);
    let mut v: Vec<_> = vectors
        .iter()
        .map(|v| (v.id.as_str(), v.embedding.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    assert_eq!(
        v,
        [("m1", vec![1.0, 0.0, 0.5]), ("m2", vec![0.0, 1.0, 0.0])]
    );
    // With what recall shows of each, as stored.
    let m2 = vectors.iter().find(|v| v.id == "m2").unwrap();
    let stored = repo.get(ana, "m2", Utc::now()).await.unwrap().unwrap();
    assert_eq!(m2.text, "The user likes tea.");
    assert_eq!(
        (m2.created_at, m2.expires_at),
        (stored.created_at, stored.expires_at)
    );

    let upd = MemoryUpdate {
        text: "The user's name is Ana Lima.".into(),
        slot: Some("name".into()),
        source: "turn-2".into(),
        embedding: vec![0.9, 0.1, 0.4],
        at: Utc::now(),
        mentioned: true,
    };
    assert_eq!(repo.update(ana, "m1", upd.clone()).await.unwrap(), Some(3));
    // Another user's memory cannot be changed, read or deleted.
    assert_eq!(repo.update(ben, "m1", upd).await.unwrap(), None);
    assert!(repo.get(ben, "m1", Utc::now()).await.unwrap().is_none());
    assert_eq!(repo.delete(ben, "m1").await.unwrap(), None);
    let m1 = repo.get(ana, "m1", Utc::now()).await.unwrap().unwrap();
    assert_eq!(
        (m1.text.as_str(), m1.source.as_str(), m1.mentions),
        ("The user's name is Ana Lima.", "turn-2", 2)
    );
    let listed = repo
        .list(ana, MemoryKind::Fact, 10, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    let many = repo
        .get_many(ana, &["m2".into(), "b1".into(), "nope".into()], Utc::now())
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(
        repo.with_slot(ana, "name", Utc::now()).await.unwrap().len(),
        1
    );
    assert_eq!(repo.delete(ana, "m2").await.unwrap(), Some(4));
    assert_eq!(
        repo.list(ana, MemoryKind::Fact, 10, Utc::now())
            .await
            .unwrap()
            .len(),
        1
    );

    let profiles: &dyn ProfileRepository = &repo;
    assert_eq!(profiles.load(ana).await.unwrap(), None);
    let save = |json: &'static str, read: Option<u64>| async move {
        profiles.save(&common::profile_save(ana, json, read)).await
    };
    assert!(save("{\"messages\":1}", None).await.unwrap());
    // A second first save (another process read "none" too) writes nothing.
    assert!(!save("{\"messages\":9}", None).await.unwrap());
    let stored = |json: &str, version| StoredProfile {
        json: json.to_string(),
        version,
    };
    assert_eq!(
        profiles.load(ana).await.unwrap(),
        Some(stored("{\"messages\":1}", 0))
    );
    assert!(save("{\"messages\":2}", Some(0)).await.unwrap());
    // A save over a version that is no longer current writes nothing.
    assert!(!save("{\"messages\":8}", Some(0)).await.unwrap());
    assert_eq!(
        profiles.load(ana).await.unwrap(),
        Some(stored("{\"messages\":2}", 1))
    );
}

async fn superseded_and_expired_memories_are_not_live(db: Database) {
    let ana = user(&db, "ana").await;
    let repo = SqlMemoryRepository::new(db.clone());
    repo.insert(fact(
        "old",
        ana,
        "The user works on the Orion project.",
        Some("project"),
        vec![1.0],
    ))
    .await
    .unwrap();
    repo.insert(fact(
        "new",
        ana,
        "The user works on the Apollo project.",
        Some("project"),
        vec![0.5],
    ))
    .await
    .unwrap();
    assert!(
        repo.supersede(ana, "old", "new", Utc::now())
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        repo.supersede(ana, "old", "new", Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    let live = repo.with_slot(ana, "project", Utc::now()).await.unwrap();
    assert_eq!(
        live.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["new"]
    );
    assert!(repo.get(ana, "old", Utc::now()).await.unwrap().is_none());
    let (_, vectors) = repo.vectors(ana, Utc::now()).await.unwrap();
    assert_eq!(vectors.len(), 1);

    let mut short = fact("brief", ana, "The user is in a meeting.", None, vec![0.1]);
    short.kind = MemoryKind::Turn;
    short.expires_at = Some(Utc::now() + Duration::seconds(60));
    repo.insert(short).await.unwrap();
    let later = Utc::now() + Duration::seconds(120);
    let (_, vectors) = repo.vectors(ana, Utc::now()).await.unwrap();
    let brief = vectors.iter().find(|v| v.id == "brief").unwrap();
    assert!(brief.expires_at.is_some_and(|at| at < later));
    assert!(repo.get(ana, "brief", Utc::now()).await.unwrap().is_some());
    assert!(repo.get(ana, "brief", later).await.unwrap().is_none());
    let before = repo.revision(ana).await.unwrap();
    assert_eq!(repo.purge_expired(later).await.unwrap(), 1);
    assert_eq!(repo.revision(ana).await.unwrap(), before + 1);
}

/// Working memory over `turns`, bounded at `max_turns`, turns kept a day.
fn working_of(turns: &SqlTurnRepository, max_turns: u32) -> mongars_core::memory::WorkingMemory {
    mongars_core::memory::WorkingMemory::new(
        std::sync::Arc::new(turns.clone()),
        std::sync::Arc::new(mongars_core::ports::SystemClock),
        mongars_core::memory::WorkingMemoryOptions {
            max_turns,
            ttl: std::time::Duration::from_secs(86_400),
        },
    )
}

fn turn(id: &str, user_id: i64, secs: i64) -> NewTurn {
    NewTurn {
        id: id.into(),
        user_id,
        session_id: None,
        query: format!("q-{id}"),
        created_at: Utc::now() + Duration::seconds(secs),
        owner: None,
        ordinals: Default::default(),
        trace: None,
        note: None,
    }
}

fn done(working_until: chrono::DateTime<Utc>) -> TurnCompletion {
    TurnCompletion {
        response: "r".into(),
        model: "m".into(),
        prompt_tokens: 1,
        completion_tokens: 1,
        confidence: 0.5,
        ttft_ms: 1,
        generation_ms: 1,
        total_ms: 1,
        speech_turn: SpeechTurn {
            turn_id: "x".into(),
            text: "r".into(),
            created_at: Utc::now(),
            segments: vec![],
            average_words_per_second: 2.0,
            tempo: 1.0,
        },
        completed_at: Utc::now(),
        working_until,
    }
}

async fn a_trim_is_due_every_slack_turns_past_the_bound(db: Database) {
    let ana = user(&db, "ana").await;
    let turns = SqlTurnRepository::new(db.clone());
    let working = working_of(&turns, 16);
    let until = Utc::now() + Duration::days(1);
    let mut due = Vec::new();
    // The bound of sixteen and two turns of slack: turns are taken out two
    // at a time, once an eighteenth is held.
    assert_eq!(working.slack(), 2);
    for i in 0..23 {
        let at = working.position(ana, None).await.unwrap();
        assert_eq!(at.ordinal(), i, "every complete turn counts");
        if at.trim_due {
            due.push(i);
        }
        let id = format!("w{i}");
        turns.start(turn(&id, ana, i as i64)).await.unwrap();
        turns.complete(&id, &done(until)).await.unwrap();
        if at.trim_due {
            assert_eq!(working.trim(ana).await.unwrap(), 2, "turn {i}");
        }
        let held = turns.count_complete(ana, None, Utc::now()).await.unwrap();
        assert!(held <= 18, "turn {i}: {held} held");
        // Readers never see more than the bound.
        assert!(working.recent(ana, None, 100).await.unwrap().len() <= 16);
    }
    // The eighteenth complete turn is the first that takes working memory
    // past the bound and its slack; then every second one.
    assert_eq!(due, [17, 19, 21]);
    assert_eq!(
        turns.count_complete(ana, None, Utc::now()).await.unwrap(),
        17
    );
    // A turn in a session trims by the user's place, which counts the
    // user's turns in every session: the next is the twenty-fourth.
    let at = working.position(ana, Some("s")).await.unwrap();
    assert_eq!(at.ordinals.user, Some(23));
    assert!(at.trim_due);
    // A trim takes out whatever is beyond the bound, and with nothing
    // beyond it writes nothing.
    assert_eq!(working.trim(ana).await.unwrap(), 1);
    assert_eq!(working.trim(ana).await.unwrap(), 0);
    // Working memory held past its bound by a trim missed (two turns that
    // shared a place, or a smaller bound set since) goes back to the bound
    // at the next trim, whatever the excess.
    let strict = working_of(&turns, 10);
    assert_eq!(strict.trim(ana).await.unwrap(), 6);
    assert_eq!(
        turns.count_complete(ana, None, Utc::now()).await.unwrap(),
        10
    );
}

async fn a_turn_s_place_steps_from_the_newest_and_counts_only_when_unknown(db: Database) {
    use mongars_core::domain::TurnOrdinals;
    let bo = user(&db, "bo").await;
    let turns = SqlTurnRepository::new(db.clone());
    let working = working_of(&turns, 3);
    let until = Utc::now() + Duration::days(1);
    let mut secs = 0;
    let mut run = |id: String, session: Option<&str>, ordinals: TurnOrdinals| {
        secs += 1;
        let mut t = turn(&id, bo, secs);
        t.session_id = session.map(String::from);
        t.ordinals = ordinals;
        t
    };
    // Turns in session "s" and outside it, in turn: the user's place
    // counts both, the session's only its own.
    for i in 0..6_u64 {
        let session = (i % 2 == 0).then_some("s");
        let at = working.position(bo, session).await.unwrap();
        assert_eq!(at.ordinals.user, Some(i), "turn {i}");
        assert_eq!(at.ordinals.session, session.map(|_| i.div_ceil(2)));
        assert_eq!(at.ordinal(), at.ordinals.session.unwrap_or(i));
        let id = format!("o{i}");
        turns
            .start(run(id.clone(), session, at.ordinals))
            .await
            .unwrap();
        turns.complete(&id, &done(until)).await.unwrap();
        // Beyond the bound: the working count stands still, the place not.
        working.trim(bo).await.unwrap();
    }
    // A failed turn takes no place.
    let at = working.position(bo, None).await.unwrap();
    turns
        .start(run("failed".into(), None, at.ordinals))
        .await
        .unwrap();
    turns.fail("failed", "llm.unavailable").await.unwrap();
    assert_eq!(working.position(bo, None).await.unwrap(), at);
    // A turn stored without places (as before they were kept): the next
    // counts the history once, then steps again.
    turns
        .start(run("bare".into(), Some("s"), TurnOrdinals::default()))
        .await
        .unwrap();
    turns.complete("bare", &done(until)).await.unwrap();
    let at = working.position(bo, Some("s")).await.unwrap();
    assert_eq!(
        at.ordinals,
        TurnOrdinals {
            user: Some(7),
            session: Some(4)
        }
    );
    turns
        .start(run("after".into(), Some("s"), at.ordinals))
        .await
        .unwrap();
    turns.complete("after", &done(until)).await.unwrap();
    let at = working.position(bo, Some("s")).await.unwrap();
    assert_eq!(
        at.ordinals,
        TurnOrdinals {
            user: Some(8),
            session: Some(5)
        }
    );
    // The one read gives both places and nothing of other users.
    let eve = user(&db, "eve").await;
    assert_eq!(
        turns.newest_ordinals(eve, Some("s")).await.unwrap(),
        (
            mongars_core::domain::NewestOrdinal::NoTurn,
            mongars_core::domain::NewestOrdinal::NoTurn
        )
    );
}

async fn working_memory_is_bounded_and_purged(db: Database) {
    let ana = user(&db, "ana").await;
    let turns = SqlTurnRepository::new(db.clone());
    let now = Utc::now();
    for i in 0..5 {
        let id = format!("t{i}");
        turns.start(turn(&id, ana, i)).await.unwrap();
        // t0 expires in a minute, the others in a day.
        let until = if i == 0 {
            now + Duration::seconds(60)
        } else {
            now + Duration::days(1)
        };
        turns.complete(&id, &done(until)).await.unwrap();
    }
    let ids = |v: Vec<mongars_core::domain::Turn>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(turns.count_complete(ana, None, now).await.unwrap(), 5);
    let later = now + Duration::seconds(120);
    assert_eq!(
        ids(turns.recent(ana, None, 10, later).await.unwrap()),
        ["t4", "t3", "t2", "t1"]
    );
    // Not more than 5 held: nothing is written.
    assert_eq!(turns.trim_working(ana, 5).await.unwrap(), 0);
    assert_eq!(turns.count_complete(ana, None, now).await.unwrap(), 5);
    assert_eq!(turns.trim_working(ana, 3).await.unwrap(), 2);
    assert_eq!(turns.trim_working(ana, 3).await.unwrap(), 0);
    assert_eq!(
        ids(turns.recent(ana, None, 10, now).await.unwrap()),
        ["t4", "t3", "t2"]
    );
    let t = &turns.recent(ana, None, 1, now).await.unwrap()[0];
    assert!(t.expires_at.is_some());
    assert_eq!(
        turns.purge_working(now + Duration::days(2)).await.unwrap(),
        3
    );
    assert_eq!(turns.count_complete(ana, None, now).await.unwrap(), 0);

    assert_eq!(turns.trace(ana, "t4").await.unwrap(), Some(None));
    // A turn stored with its trace and note.
    turns
        .start(NewTurn {
            trace: Some("{\"memories\":[]}".into()),
            note: Some("note".into()),
            ..turn("t5", ana, 5)
        })
        .await
        .unwrap();
    assert_eq!(
        turns.trace(ana, "t5").await.unwrap(),
        Some(Some("{\"memories\":[]}".into()))
    );
    let ben = user(&db, "ben").await;
    assert_eq!(turns.trace(ben, "t4").await.unwrap(), None);
}

async fn forgetting_a_user_removes_everything_of_theirs(db: Database) {
    let ana = user(&db, "ana").await;
    let ben = user(&db, "ben").await;
    let turns = SqlTurnRepository::new(db.clone());
    let repo = SqlMemoryRepository::new(db.clone());
    for (id, who) in [("a1", ana), ("a2", ana), ("b1", ben)] {
        turns.start(turn(id, who, 0)).await.unwrap();
        repo.insert(fact(&format!("m-{id}"), who, "x", None, vec![1.0]))
            .await
            .unwrap();
    }
    assert!(
        ProfileRepository::save(&repo, &common::profile_save(ana, "{}", None))
            .await
            .unwrap()
    );
    let report = repo.forget_user(ana).await.unwrap();
    assert_eq!(
        (report.turns, report.memories, report.profile),
        (2, 2, true)
    );
    assert!(mongars_store::all_turns(&db, ana).await.unwrap().is_empty());
    assert_eq!(repo.vectors(ana, Utc::now()).await.unwrap().1.len(), 0);
    assert_eq!(ProfileRepository::load(&repo, ana).await.unwrap(), None);
    // Ben keeps his.
    assert_eq!(mongars_store::all_turns(&db, ben).await.unwrap().len(), 1);
    assert_eq!(repo.vectors(ben, Utc::now()).await.unwrap().1.len(), 1);
}
