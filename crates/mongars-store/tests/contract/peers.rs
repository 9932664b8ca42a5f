//! The peer list: registration, a changed fingerprint, removal.

use chrono::Utc;
use mongars_core::domain::PeerRecord;
use mongars_core::ports::PeerRepository;
use mongars_store::{Database, SqlPeerRepository};

pub async fn peers_are_registered_updated_and_removed(db: Database) {
    let repo = SqlPeerRepository::new(db.clone());
    let at = Utc::now();
    let a = PeerRecord {
        url: "https://a:8443".into(),
        fingerprint: "a".repeat(64),
        created_at: at,
    };
    repo.upsert(&a).await.unwrap();
    let changed = PeerRecord {
        fingerprint: "b".repeat(64),
        created_at: at + chrono::Duration::seconds(5),
        ..a.clone()
    };
    let stored = repo.upsert(&changed).await.unwrap();
    assert_eq!(stored.fingerprint, "b".repeat(64));
    // The first registration's time is kept.
    assert_eq!(stored.created_at.timestamp(), at.timestamp());
    assert_eq!(repo.list().await.unwrap().len(), 1, "{}", db.engine());
    assert!(repo.remove("https://a:8443").await.unwrap());
    assert!(!repo.remove("https://a:8443").await.unwrap());
    assert!(repo.list().await.unwrap().is_empty());
}
