//! API keys in the store: kept as hashes, listed per owner, revoked once.

use super::owner;
use chrono::Utc;
use mongars_core::ports::RepoError;
use mongars_store::Database;

pub(crate) async fn api_keys_are_stored_as_hashes_and_revoked(db: Database) {
    use mongars_core::domain::{KeyName, NewApiKey, key_hash};
    use mongars_core::ports::ApiKeyRepository;
    use mongars_store::SqlApiKeyRepository;
    let ana = owner(&db, "keyholder").await;
    let ben = owner(&db, "other").await;
    let repo = SqlApiKeyRepository::new(db.clone());
    // PostgreSQL keeps microseconds.
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let make = |user: i64, name: &str, secs: i64| {
        let name = KeyName::parse(name).unwrap();
        NewApiKey::generate(
            user,
            3,
            name,
            now + chrono::Duration::seconds(secs),
            Some(7),
        )
        .unwrap()
    };
    let (a1, a2, b1) = (
        make(ana, "one", 0),
        make(ana, "two", 1),
        make(ben, "theirs", 2),
    );
    for k in [&a1, &a2, &b1] {
        repo.insert(k).await.unwrap();
    }
    let names: Vec<String> = repo
        .list(ana)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["two", "one"], "newest first, own keys only");
    let found = repo
        .find_by_hash(&key_hash(&a1.secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, a1.key, "stored and read back whole");
    assert_eq!(found.version, 3);
    assert!(
        repo.find_by_hash(&a1.secret).await.unwrap().is_none(),
        "the secret is not stored"
    );
    assert!(
        repo.get(ben, &a1.key.id).await.unwrap().is_none(),
        "another user's id"
    );
    repo.touch(&a1.key.id, now).await.unwrap();
    let touched = repo.get(ana, &a1.key.id).await.unwrap().unwrap();
    assert!(touched.last_used_at.is_some());
    assert!(!repo.revoke(ben, &a1.key.id, now).await.unwrap());
    assert!(repo.revoke(ana, &a1.key.id, now).await.unwrap());
    assert!(!repo.revoke(ana, &a1.key.id, now).await.unwrap(), "once");
    assert!(
        repo.find_by_hash(&key_hash(&a1.secret))
            .await
            .unwrap()
            .is_none()
    );
    assert!(repo.get(ana, &a1.key.id).await.unwrap().is_none());
    assert_eq!(repo.list(ana).await.unwrap().len(), 1);
    // Two keys can never share a hash.
    assert_eq!(repo.insert(&a2).await.unwrap_err(), RepoError::Duplicate);
}
