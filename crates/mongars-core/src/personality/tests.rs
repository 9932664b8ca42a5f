use super::*;
use crate::ports::{ManualClock, RepoError, StoredProfile};
use async_trait::async_trait;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;

/// Profiles in memory with the store's versioned saves. The first save of
/// `held` waits for `release`; before the next save of `raced`, another
/// process saves that user's profile.
#[derive(Default)]
struct Profiles {
    rows: Mutex<HashMap<i64, StoredProfile>>,
    held: Mutex<Option<i64>>,
    release: Notify,
    parked: Notify,
    raced: Mutex<Option<(i64, String)>>,
    /// Loads so far.
    loads: Mutex<usize>,
}

impl Profiles {
    fn put(&self, user_id: i64, json: &str, read: Option<u64>) -> bool {
        let mut rows = self.rows.lock().unwrap();
        let current = rows.get(&user_id).map(|p| p.version);
        if current != read {
            return false;
        }
        let version = current.map_or(0, |v| v + 1);
        let json = json.to_string();
        rows.insert(user_id, StoredProfile { json, version });
        true
    }
}

#[async_trait]
impl ProfileRepository for Profiles {
    async fn load(&self, user_id: i64) -> Result<Option<StoredProfile>, RepoError> {
        *self.loads.lock().unwrap() += 1;
        Ok(self.rows.lock().unwrap().get(&user_id).cloned())
    }

    async fn save(&self, save: &ProfileSave) -> Result<bool, RepoError> {
        let (user_id, json, read) = (save.user_id, save.json.as_str(), save.read);
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
        let raced = self.raced.lock().unwrap().take_if(|(u, _)| *u == user_id);
        if let Some((_, other)) = raced {
            let before = self.rows.lock().unwrap().get(&user_id).map(|p| p.version);
            assert!(self.put(user_id, &other, before));
        }
        Ok(self.put(user_id, json, read))
    }
}

fn service(repo: &Arc<Profiles>) -> Arc<PersonalityService> {
    Arc::new(PersonalityService::new(
        repo.clone(),
        Arc::new(ManualClock::new()),
    ))
}

#[tokio::test(start_paused = true)]
async fn one_user_s_learning_waits_only_for_their_own() {
    let repo = Arc::new(Profiles::default());
    *repo.held.lock().unwrap() = Some(1);
    let service = service(&repo);
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

#[tokio::test]
async fn a_save_from_another_process_in_between_is_kept_and_learnt_on() {
    let repo = Arc::new(Profiles::default());
    let service = service(&repo);
    service.learn(7, "Hello.").await.unwrap();
    // Another replica learns a message of user 7 between this process's
    // read and its save: its profile has two messages, and ours would
    // overwrite it with two as well.
    let mut theirs = service.profile(7).await.unwrap();
    theirs.learn("Bonjour, ça va ?", Utc::now());
    *repo.raced.lock().unwrap() = Some((7, serde_json::to_string(&theirs).unwrap()));
    let ours = service
        .learn(7, "Could you please explain this in detail?")
        .await
        .unwrap();
    // The lost save read again: three messages, none overwritten.
    assert_eq!(ours.messages, 3);
    let stored = repo.load(7).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(service.profile(7).await.unwrap().messages, 3);
}

#[tokio::test]
async fn a_message_is_learnt_over_the_profile_read_for_its_prompt() {
    let repo = Arc::new(Profiles::default());
    let service = service(&repo);
    // A first message, then a second learnt over the profile its prompt
    // read: one load for the two, and both messages are in.
    let read = service.read(3).await.unwrap();
    service.learn_over(3, "Hello.", Some(read)).await.unwrap();
    let read = service.read(3).await.unwrap();
    assert_eq!(*repo.loads.lock().unwrap(), 2);
    let learnt = service
        .learn_over(3, "Could you please explain this in detail?", Some(read))
        .await
        .unwrap();
    assert_eq!(*repo.loads.lock().unwrap(), 2, "nothing read again");
    assert_eq!(learnt.messages, 2);
    assert_eq!(repo.load(3).await.unwrap().unwrap().version, 1);
}

#[tokio::test]
async fn a_profile_read_for_a_prompt_and_saved_since_is_read_again() {
    let repo = Arc::new(Profiles::default());
    let service = service(&repo);
    service.learn(5, "Hello.").await.unwrap();
    // Two chats of one user read the profile for their prompts; the first
    // learns its message, then the second learns over what it read.
    let first = service.read(5).await.unwrap();
    let second = service.read(5).await.unwrap();
    service.learn_over(5, "hi", Some(first)).await.unwrap();
    let loads = *repo.loads.lock().unwrap();
    let learnt = service
        .learn_over(5, "Bonjour, ça va ?", Some(second))
        .await
        .unwrap();
    // Its save found another version: read again, nothing lost.
    assert_eq!(*repo.loads.lock().unwrap(), loads + 1);
    assert_eq!(learnt.messages, 3);
    let stored = repo.load(5).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(service.profile(5).await.unwrap().messages, 3);
}

/// A repository whose every save loses to another process.
struct AlwaysRaced;

#[async_trait]
impl ProfileRepository for AlwaysRaced {
    async fn load(&self, _: i64) -> Result<Option<StoredProfile>, RepoError> {
        Ok(None)
    }

    async fn save(&self, _: &ProfileSave) -> Result<bool, RepoError> {
        Ok(false)
    }
}

#[tokio::test]
async fn a_profile_that_never_stays_still_gives_up_with_an_error() {
    let service = PersonalityService::new(Arc::new(AlwaysRaced), Arc::new(ManualClock::new()));
    let e = service.learn(1, "hi").await.unwrap_err();
    assert!(matches!(e, CoreError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn a_folded_profile_saved_over_a_replaced_version_is_learnt_again() {
    let repo = Arc::new(Profiles::default());
    let service = service(&repo);
    service.learn(3, "Hello there.").await.unwrap();
    // A turn's prompt read the profile; then another process saved one.
    let known = service.read(3).await.unwrap();
    let (folded, save) = service.fold(3, "What time is it?", known).unwrap();
    assert_eq!(folded.messages, 2);
    assert_eq!((save.user_id, save.read), (3, Some(0)));
    assert_eq!(
        serde_json::from_str::<StyleProfile>(&save.json)
            .unwrap()
            .messages,
        2
    );
    assert!(repo.put(3, &repo.load(3).await.unwrap().unwrap().json, Some(0)));
    // The reply's save finds another version and writes nothing; the
    // message is then learnt over the profile as stored now.
    assert!(!repo.save(&save).await.unwrap());
    assert_eq!(
        service.learn(3, "What time is it?").await.unwrap().messages,
        2
    );
    assert_eq!(repo.load(3).await.unwrap().unwrap().version, 2);
}
