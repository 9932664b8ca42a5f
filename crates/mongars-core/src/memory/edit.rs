//! What users do with their memories through the API: list and search,
//! write, edit and delete facts, and forget everything.

use super::service::{Found, MemoryService};
use crate::domain::{
    Memory, MemoryChange, MemoryKind, MemoryUpdate, SOURCE_USER, parse_memory_text,
};
use crate::error::CoreError;
use crate::memory::extract::first_person;
use crate::ports::ForgetReport;

impl MemoryService {
    /// The user's facts, most recently updated first; with `query`, the
    /// closest to it first, with their similarity.
    pub async fn list(
        &self,
        user_id: i64,
        query: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Found>, CoreError> {
        match query.map(str::trim).filter(|q| !q.is_empty()) {
            None => Ok(self
                .repo
                .list(user_id, MemoryKind::Fact, limit, self.clock.now())
                .await?
                .into_iter()
                .map(|memory| Found {
                    memory,
                    score: None,
                })
                .collect()),
            Some(q) => {
                let v = self.embed(q).await?;
                let hits = self
                    .search(user_id, &v, limit as usize, -1.0, &[MemoryKind::Fact])
                    .await?;
                Ok(self
                    .by_ids(user_id, &hits)
                    .await?
                    .into_iter()
                    .map(|(memory, s)| Found {
                        memory,
                        score: Some(s),
                    })
                    .collect())
            }
        }
    }

    /// A fact written by the user. One that restates an existing fact
    /// updates it instead (`false` in the answer: nothing new was created).
    pub async fn create(&self, user_id: i64, raw: &str) -> Result<(Memory, bool), CoreError> {
        let text = parse_memory_text(raw)?;
        let v = self.embed(&first_person(&text)).await?;
        let near = self
            .search(
                user_id,
                &v,
                1,
                self.options.dedup_similarity,
                &[MemoryKind::Fact],
            )
            .await?;
        if let Some(h) = near.first() {
            let old = self.repo.get(user_id, &h.id, self.clock.now()).await?;
            let update = MemoryUpdate {
                text,
                slot: old.and_then(|m| m.slot),
                source: SOURCE_USER.to_string(),
                embedding: v,
                at: self.clock.now(),
                mentioned: true,
            };
            return Ok((self.restate(user_id, &h.id, update).await?, false));
        }
        Ok((
            self.create_fact(user_id, &text, None, SOURCE_USER, v)
                .await?,
            true,
        ))
    }

    /// Rewrite a fact of the user.
    pub async fn edit(&self, user_id: i64, id: &str, raw: &str) -> Result<Memory, CoreError> {
        let text = parse_memory_text(raw)?;
        let old = self
            .repo
            .get(user_id, id, self.clock.now())
            .await?
            .filter(|m| m.kind == MemoryKind::Fact)
            .ok_or(CoreError::NotFound("memory"))?;
        let v = self.embed(&first_person(&text)).await?;
        let update = MemoryUpdate {
            text,
            slot: old.slot,
            source: SOURCE_USER.to_string(),
            embedding: v,
            at: self.clock.now(),
            mentioned: false,
        };
        self.restate(user_id, id, update).await
    }

    /// Delete a fact of the user.
    pub async fn delete(&self, user_id: i64, id: &str) -> Result<(), CoreError> {
        let known = self.repo.get(user_id, id, self.clock.now()).await?;
        if known.is_none_or(|m| m.kind != MemoryKind::Fact) {
            return Err(CoreError::NotFound("memory"));
        }
        let rev = self
            .repo
            .delete(user_id, id)
            .await?
            .ok_or(CoreError::NotFound("memory"))?;
        self.cache
            .apply(user_id, rev, MemoryChange::Remove(id.to_string()))
            .await;
        Ok(())
    }

    /// Delete every turn, memory, vector and the profile of the user.
    pub async fn forget(&self, user_id: i64) -> Result<ForgetReport, CoreError> {
        self.settled().await;
        let report = self.repo.forget_user(user_id).await?;
        self.cache.drop_user(user_id);
        Ok(report)
    }

    /// Delete memories past their expiry; how many.
    pub async fn purge_expired(&self) -> Result<u64, CoreError> {
        Ok(self.repo.purge_expired(self.clock.now()).await?)
    }
}
