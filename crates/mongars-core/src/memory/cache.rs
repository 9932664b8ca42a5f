//! Vector indexes of the users seen lately, one per user, kept in step with
//! the database by revision: this process applies its own changes in place;
//! a revision it did not make (another replica wrote) reloads the index.
//! Beside each vector it keeps what recall puts in a prompt (text, creation
//! time, expiry), so a turn's recall reads only the revision.

use super::index::VectorIndex;
use crate::domain::{MemoryChange, MemoryVector};
use crate::ports::{MemoryRepository, RepoError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub struct Cached {
    pub revision: u64,
    pub index: VectorIndex,
    /// What recall shows of each indexed memory, by id.
    pub shown: HashMap<String, Shown>,
}

/// An indexed memory as recall puts it in a prompt.
pub struct Shown {
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl Shown {
    /// Not expired at `now` (superseded memories leave the index).
    pub fn live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl Cached {
    fn upsert(&mut self, v: MemoryVector) {
        if v.embedding.len() != self.index.dims() {
            // The index ignores such a vector; so does recall.
            return;
        }
        self.index.upsert(&v.id, v.kind, &v.embedding);
        let shown = Shown {
            text: v.text,
            created_at: v.created_at,
            expires_at: v.expires_at,
        };
        self.shown.insert(v.id, shown);
    }

    fn remove(&mut self, id: &str) {
        self.index.remove(id);
        self.shown.remove(id);
    }
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
            let mut cached = Cached {
                revision,
                index: VectorIndex::new(self.dims),
                shown: HashMap::with_capacity(vectors.len()),
            };
            for v in vectors {
                cached.upsert(v);
            }
            *guard = Some(cached);
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
                    MemoryChange::Upsert(v) => c.upsert(v),
                    MemoryChange::Remove(id) => c.remove(&id),
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
