//! Vector indexes of the users seen lately, one per user, kept in step with
//! the database by revision: this process applies its own changes in place;
//! a revision it did not make (another replica wrote) reloads the index.

use super::index::VectorIndex;
use crate::domain::MemoryChange;
use crate::ports::{MemoryRepository, RepoError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Cached {
    pub revision: u64,
    pub index: VectorIndex,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

pub struct IndexCache {
    dims: usize,
    capacity: usize,
    slots: Mutex<HashMap<i64, (Slot, u64)>>,
    tick: std::sync::atomic::AtomicU64,
}

impl IndexCache {
    pub fn new(dims: usize, capacity: usize) -> Self {
        Self {
            dims,
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
            tick: Default::default(),
        }
    }

    fn slot(&self, user_id: i64) -> Slot {
        let tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((slot, used)) = slots.get_mut(&user_id) {
            *used = tick;
            return slot.clone();
        }
        if slots.len() >= self.capacity {
            // Drop the least recently used index.
            if let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            {
                slots.remove(&oldest);
            }
        }
        let slot: Slot = Arc::default();
        slots.insert(user_id, (slot.clone(), tick));
        slot
    }

    /// The user's index, current with the database, locked for use.
    pub async fn current(
        &self,
        repo: &dyn MemoryRepository,
        user_id: i64,
        now: DateTime<Utc>,
    ) -> Result<tokio::sync::OwnedMutexGuard<Option<Cached>>, RepoError> {
        let mut guard = self.slot(user_id).lock_owned().await;
        let revision = repo.revision(user_id).await?;
        if guard.as_ref().is_none_or(|c| c.revision != revision) {
            let (revision, vectors) = repo.vectors(user_id, now).await?;
            let mut index = VectorIndex::new(self.dims);
            for v in &vectors {
                index.upsert(&v.id, v.kind, &v.embedding);
            }
            *guard = Some(Cached { revision, index });
        }
        Ok(guard)
    }

    /// Apply a change this process made, which brought the user to
    /// `revision`. Out of step (a change from elsewhere came between): the
    /// index is dropped and reloaded on next use.
    pub async fn apply(&self, user_id: i64, revision: u64, change: MemoryChange) {
        let slot = self.slot(user_id);
        let mut guard = slot.lock().await;
        match guard.as_mut() {
            Some(c) if c.revision + 1 == revision => {
                match change {
                    MemoryChange::Upsert(v) => c.index.upsert(&v.id, v.kind, &v.embedding),
                    MemoryChange::Remove(id) => {
                        c.index.remove(&id);
                    }
                }
                c.revision = revision;
            }
            _ => *guard = None,
        }
    }

    /// Forget the user's index (after their data was deleted).
    pub fn drop_user(&self, user_id: i64) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&user_id);
    }
}
