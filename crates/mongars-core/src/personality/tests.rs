use super::*;
use crate::ports::{ManualClock, RepoError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Profiles in memory; the first save of `held` waits for `release`.
#[derive(Default)]
struct Profiles {
    rows: Mutex<HashMap<i64, String>>,
    held: Mutex<Option<i64>>,
    release: Notify,
    parked: Notify,
}

#[async_trait]
impl ProfileRepository for Profiles {
    async fn load(&self, user_id: i64) -> Result<Option<String>, RepoError> {
        Ok(self.rows.lock().unwrap().get(&user_id).cloned())
    }

    async fn save(&self, user_id: i64, json: &str, _at: DateTime<Utc>) -> Result<(), RepoError> {
        let hold = {
            let mut held = self.held.lock().unwrap();
            let hold = *held == Some(user_id);
            if hold {
                *held = None;
            }
            hold
        };
        if hold {
            self.parked.notify_one();
            self.release.notified().await;
        }
        self.rows.lock().unwrap().insert(user_id, json.to_string());
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn one_user_s_learning_waits_only_for_their_own() {
    let repo = Arc::new(Profiles::default());
    *repo.held.lock().unwrap() = Some(1);
    let service = Arc::new(PersonalityService::new(
        repo.clone(),
        Arc::new(ManualClock::new()),
    ));
    let learn = |user: i64, message: &'static str| {
        let service = service.clone();
        tokio::spawn(async move { service.learn(user, message).await.unwrap() })
    };
    // User 1's first message is held in the middle of its save.
    let first = learn(1, "Hello there, how are you?");
    repo.parked.notified().await;
    let second = learn(1, "Could you please explain it in detail?");
    // Another user learns meanwhile. The clock is paused: were this
    // learning waiting on user 1's lock, the timeout would fire first.
    let other = tokio::time::timeout(Duration::from_secs(60), learn(2, "hi"))
        .await
        .expect("not held up by user 1")
        .unwrap();
    assert_eq!(other.messages, 1);
    // User 1's second message waits for the first: nothing is lost.
    assert!(!second.is_finished());
    repo.release.notify_one();
    assert_eq!(first.await.unwrap().messages, 1);
    assert_eq!(second.await.unwrap().messages, 2);
    assert_eq!(service.profile(1).await.unwrap().messages, 2);
}
