//! Long-term memory: what the pipeline recalls before a reply and learns
//! after it. What the memories API does is in `edit.rs`.

use super::cache::{Cached, IndexCache, Shown};
use super::extract::{Fact, extract_facts, first_person};
use super::index::{Hit, VectorIndex};
use crate::domain::{Memory, MemoryChange, MemoryKind, MemoryUpdate, MemoryVector, NewMemory};
use crate::error::CoreError;
use crate::ports::{Clock, Embedder, MemoryRepository, embed_one};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// Past exchanges must be at least this close to the question to be
/// recalled: they are long, and loosely related ones only distract.
const TURN_MIN_SIMILARITY: f32 = 0.5;

#[derive(Debug, Clone)]
pub struct MemoryOptions {
    /// Memories recalled into a prompt, at most.
    pub recall_k: usize,
    /// Least cosine similarity for a memory to be recalled.
    pub min_similarity: f32,
    /// A new fact this similar to an old one restates it.
    pub dedup_similarity: f32,
    /// Users with at most this many facts get all of them in every prompt.
    pub core_facts: usize,
    /// Most prompt tokens the recalled memories may take.
    pub recall_max_tokens: usize,
    /// How long a fact lives; `None`: until deleted.
    pub fact_ttl: Option<Duration>,
    /// How long a past turn stays recallable; `None`: until deleted.
    pub turn_ttl: Option<Duration>,
    /// Users whose vector index is kept in memory.
    pub index_cache_users: usize,
}

/// A memory recalled for a prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Recalled {
    pub id: String,
    pub kind: MemoryKind,
    pub text: String,
    pub score: f32,
}

/// A memory and, for searches, how close it is to the query.
#[derive(Debug, Clone)]
pub struct Found {
    pub memory: Memory,
    pub score: Option<f32>,
}

pub struct MemoryService {
    pub(super) embedder: Arc<dyn Embedder>,
    pub(super) repo: Arc<dyn MemoryRepository>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) options: MemoryOptions,
    pub(super) cache: IndexCache,
    pending: Arc<crate::pending::Pending>,
}

impl MemoryService {
    pub fn new(
        embedder: Arc<dyn Embedder>,
        repo: Arc<dyn MemoryRepository>,
        clock: Arc<dyn Clock>,
        options: MemoryOptions,
    ) -> Self {
        let cache = IndexCache::new(embedder.dimensions(), options.index_cache_users);
        Self {
            embedder,
            repo,
            clock,
            options,
            cache,
            pending: Default::default(),
        }
    }

    pub fn options(&self) -> &MemoryOptions {
        &self.options
    }

    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.embedder
    }

    pub(super) async fn embed(&self, text: &str) -> Result<Vec<f32>, CoreError> {
        embed_one(self.embedder.as_ref(), text)
            .await
            .map_err(CoreError::from)
    }

    pub(super) async fn search(
        &self,
        user_id: i64,
        query: &[f32],
        k: usize,
        min: f32,
        kinds: &[MemoryKind],
    ) -> Result<Vec<Hit>, CoreError> {
        self.with_index(user_id, |index| index.search(query, k, min, kinds))
            .await
    }

    /// Run `f` on the user's index, current with the database (one
    /// revision check however many searches `f` makes).
    async fn with_index<T: Default>(
        &self,
        user_id: i64,
        f: impl FnOnce(&VectorIndex) -> T,
    ) -> Result<T, CoreError> {
        self.with_cached(user_id, |c| f(&c.index)).await
    }

    /// [`Self::with_index`] with what the index keeps beside the vectors.
    async fn with_cached<T: Default>(
        &self,
        user_id: i64,
        f: impl FnOnce(&Cached) -> T,
    ) -> Result<T, CoreError> {
        let guard = self
            .cache
            .current(self.repo.as_ref(), user_id, self.clock.now())
            .await?;
        Ok(guard.as_ref().map(f).unwrap_or_default())
    }

    /// What to put in the prompt for a question: the user's facts, then
    /// past turns close to the question.
    ///
    /// Facts: all of them, oldest first, while there are at most
    /// `core_facts` (a stable block, so the engine's prompt cache keeps it
    /// from turn to turn); beyond that the `recall_k` closest to the
    /// question above `min_similarity`. Turns: those above the turn
    /// threshold, filling `recall_k` but at least two; never the turns in
    /// `exclude` (already in the prompt as history).
    pub async fn recall(
        &self,
        user_id: i64,
        query_vector: &[f32],
        exclude: &[String],
    ) -> Result<Vec<Recalled>, CoreError> {
        let k = self.options.recall_k;
        let min = self.options.min_similarity;
        let core = self.options.core_facts;
        let now = self.clock.now();
        self.with_cached(user_id, |cached| {
            let index = &cached.index;
            let mut facts = index.search(query_vector, core.max(k) + 1, -1.0, &[MemoryKind::Fact]);
            let stable = facts.len() <= core;
            if !stable {
                facts.retain(|h| h.score >= min);
                facts.truncate(k);
            }
            let room = k.saturating_sub(facts.len()).max(2.min(k));
            let turn_min = min.max(TURN_MIN_SIMILARITY);
            let turns = index
                .search(
                    query_vector,
                    room + exclude.len(),
                    turn_min,
                    &[MemoryKind::Turn],
                )
                .into_iter()
                .filter(|h| !exclude.contains(&h.id))
                .take(room);
            // Expired memories stay indexed until the purge: left out here.
            let shown = |h: Hit| {
                let s = cached.shown.get(&h.id).filter(|s| s.live(now))?;
                Some((h, s))
            };
            let mut facts: Vec<(Hit, &Shown)> = facts.into_iter().filter_map(shown).collect();
            if stable {
                // Facts come first, oldest first, a block that stays the
                // same from turn to turn.
                facts.sort_by(|a, b| (a.1.created_at, &a.0.id).cmp(&(b.1.created_at, &b.0.id)));
            }
            facts
                .into_iter()
                .chain(turns.filter_map(shown))
                .map(|(h, s)| Recalled {
                    id: h.id,
                    kind: h.kind,
                    text: s.text.clone(),
                    score: h.score,
                })
                .collect()
        })
        .await
    }

    /// Embed text for recall; errors are the caller's to tolerate.
    pub async fn embed_query(&self, text: &str) -> Result<Vec<f32>, CoreError> {
        self.embed(text).await
    }

    /// Stored memories for hits, in hit order.
    pub(super) async fn by_ids(
        &self,
        user_id: i64,
        hits: &[Hit],
    ) -> Result<Vec<(Memory, f32)>, CoreError> {
        let ids: Vec<String> = hits.iter().map(|h| h.id.clone()).collect();
        let mut found = self.repo.get_many(user_id, &ids, self.clock.now()).await?;
        let mut out = Vec::with_capacity(hits.len());
        for h in hits {
            if let Some(at) = found.iter().position(|m| m.id == h.id) {
                out.push((found.swap_remove(at), h.score));
            }
        }
        Ok(out)
    }

    /// Learn from a finished turn, in the background: keep the turn for
    /// recall and the facts the user stated. Never delays the reply.
    /// `query_vector` is the message's embedding when recall already made
    /// it: a turn embeds the user's message once.
    pub fn learn_in_background(
        self: &Arc<Self>,
        user_id: i64,
        turn_id: String,
        query: String,
        response: String,
        query_vector: Option<Vec<f32>>,
    ) {
        let this = self.clone();
        self.pending.spawn(async move {
            let learnt = this.learn(user_id, &turn_id, &query, &response, query_vector);
            if let Err(e) = learnt.await {
                tracing::warn!(error = %e, turn_id, "could not learn from the turn");
            }
        });
    }

    /// Wait until no background learning is running.
    pub async fn settled(&self) {
        self.pending.settled().await;
    }

    /// Store the turn and the user's facts from it. The stored exchange is
    /// found by the user's words, so its vector is the message's own
    /// (`query_vector` when the caller has it already); the reply is not
    /// embedded.
    pub async fn learn(
        &self,
        user_id: i64,
        turn_id: &str,
        query: &str,
        response: &str,
        query_vector: Option<Vec<f32>>,
    ) -> Result<usize, CoreError> {
        let facts = extract_facts(query);
        let mut texts = Vec::with_capacity(facts.len() + 1);
        if query_vector.is_none() {
            texts.push(query.to_string());
        }
        texts.extend(facts.iter().map(|f| first_person(&f.text)));
        let mut vectors = if texts.is_empty() {
            Vec::new()
        } else {
            let embedded = self.embedder.embed(&texts).await.map_err(CoreError::from)?;
            if embedded.vectors.len() != texts.len() {
                return Err(CoreError::Internal(format!(
                    "the embedder returned {} vectors for {} texts",
                    embedded.vectors.len(),
                    texts.len()
                )));
            }
            embedded.vectors
        };
        if let Some(v) = query_vector {
            vectors.insert(0, v);
        }
        let now = self.clock.now();
        // Short enough that a recalled exchange costs few prompt tokens.
        let reply: String = response.chars().take(160).collect();
        let turn = NewMemory {
            id: turn_id.to_string(),
            user_id,
            kind: MemoryKind::Turn,
            text: format!("User: {query}\nAssistant: {reply}"),
            slot: None,
            source: turn_id.to_string(),
            embedding: vectors.remove(0),
            at: now,
            expires_at: expiry(now, self.options.turn_ttl),
        };
        self.insert(turn).await?;
        for (fact, vector) in facts.iter().zip(vectors) {
            self.remember(user_id, fact, turn_id, vector).await?;
        }
        Ok(facts.len())
    }

    /// Store a fact, or refresh the one it restates, or replace the one it
    /// contradicts (the old one is kept as superseded, with its source).
    async fn remember(
        &self,
        user_id: i64,
        fact: &Fact,
        source: &str,
        vector: Vec<f32>,
    ) -> Result<Memory, CoreError> {
        let now = self.clock.now();
        let same_slot = self.repo.with_slot(user_id, &fact.slot, now).await?;
        let mut same = None;
        if !same_slot.is_empty() {
            let ids: Vec<String> = same_slot.iter().map(|m| m.id.clone()).collect();
            let scores = self.scores_of(user_id, &vector, &ids).await?;
            same = same_slot.iter().zip(scores).find(|(m, s)| {
                m.text.eq_ignore_ascii_case(&fact.text)
                    || *s >= self.options.dedup_similarity && !fact.single
            });
        }
        if let Some((old, _)) = same {
            let update = self.restatement(fact, source, vector);
            return self.restate(user_id, &old.id, update).await;
        }
        if same_slot.is_empty() || !fact.single {
            // A restatement in other words of a fact about another slot.
            let near = self
                .search(
                    user_id,
                    &vector,
                    1,
                    self.options.dedup_similarity,
                    &[MemoryKind::Fact],
                )
                .await?;
            if let Some(h) = near.first() {
                let update = self.restatement(fact, source, vector);
                return self.restate(user_id, &h.id, update).await;
            }
        }
        let created = self
            .create_fact(user_id, &fact.text, Some(fact.slot.clone()), source, vector)
            .await?;
        if fact.single {
            for old in same_slot {
                if let Some(rev) = self
                    .repo
                    .supersede(user_id, &old.id, &created.id, now)
                    .await?
                {
                    self.cache
                        .apply(user_id, rev, MemoryChange::Remove(old.id.clone()))
                        .await;
                }
            }
        }
        Ok(created)
    }

    /// Similarity of `vector` to each memory of `ids` (0 when not indexed).
    async fn scores_of(
        &self,
        user_id: i64,
        vector: &[f32],
        ids: &[String],
    ) -> Result<Vec<f32>, CoreError> {
        let hits = self
            .search(user_id, vector, 64, -1.0, &[MemoryKind::Fact])
            .await?;
        Ok(ids
            .iter()
            .map(|id| hits.iter().find(|h| &h.id == id).map_or(0.0, |h| h.score))
            .collect())
    }

    /// `fact` said again: one more mention, in its latest wording.
    fn restatement(&self, fact: &Fact, source: &str, embedding: Vec<f32>) -> MemoryUpdate {
        MemoryUpdate {
            text: fact.text.clone(),
            slot: Some(fact.slot.clone()),
            source: source.to_string(),
            embedding,
            at: self.clock.now(),
            mentioned: true,
        }
    }

    /// Give memory `id` the wording, vector and slot of `update`.
    pub(super) async fn restate(
        &self,
        user_id: i64,
        id: &str,
        update: MemoryUpdate,
    ) -> Result<Memory, CoreError> {
        let embedding = update.embedding.clone();
        let rev = self
            .repo
            .update(user_id, id, update)
            .await?
            .ok_or(CoreError::NotFound("memory"))?;
        let Some(memory) = self.repo.get(user_id, id, self.clock.now()).await? else {
            // Changed and gone since (expired): out of the index too.
            let gone = MemoryChange::Remove(id.to_string());
            self.cache.apply(user_id, rev, gone).await;
            return Err(CoreError::NotFound("memory"));
        };
        let vector = MemoryVector {
            id: id.to_string(),
            kind: memory.kind,
            embedding,
            text: memory.text.clone(),
            created_at: memory.created_at,
            expires_at: memory.expires_at,
        };
        self.cache
            .apply(user_id, rev, MemoryChange::Upsert(vector))
            .await;
        Ok(memory)
    }

    pub(super) async fn create_fact(
        &self,
        user_id: i64,
        text: &str,
        slot: Option<String>,
        source: &str,
        embedding: Vec<f32>,
    ) -> Result<Memory, CoreError> {
        let now = self.clock.now();
        let id = crate::domain::time_ordered_id(now);
        self.insert(NewMemory {
            id: id.clone(),
            user_id,
            kind: MemoryKind::Fact,
            text: text.to_string(),
            slot,
            source: source.to_string(),
            embedding,
            at: now,
            expires_at: expiry(now, self.options.fact_ttl),
        })
        .await?;
        self.repo
            .get(user_id, &id, now)
            .await?
            .ok_or(CoreError::NotFound("memory"))
    }

    async fn insert(&self, m: NewMemory) -> Result<(), CoreError> {
        let (user_id, vector) = (
            m.user_id,
            MemoryVector {
                id: m.id.clone(),
                kind: m.kind,
                embedding: m.embedding.clone(),
                text: m.text.clone(),
                created_at: m.at,
                expires_at: m.expires_at,
            },
        );
        let rev = self.repo.insert(m).await?;
        self.cache
            .apply(user_id, rev, MemoryChange::Upsert(vector))
            .await;
        Ok(())
    }
}

fn expiry(now: DateTime<Utc>, ttl: Option<Duration>) -> Option<DateTime<Utc>> {
    ttl.and_then(|t| chrono::Duration::from_std(t).ok())
        .map(|t| now + t)
}
