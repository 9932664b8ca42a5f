//! Working memory (the "hippocampus"): each user's recent complete turns,
//! at most `max_turns` of them and none older than `ttl`. The chat pipeline,
//! the history endpoint and the realtime snapshot all read it here, from the
//! database, so every replica sees the same turns. A background task takes
//! expired turns out ([`WorkingMemory::purge`]); the turns themselves stay
//! as the conversation record and in long-term memory.

use crate::domain::{NewestOrdinal, Turn, TurnOrdinals};
use crate::ports::{Clock, RepoError, TurnRepository};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct WorkingMemoryOptions {
    pub max_turns: u32,
    pub ttl: Duration,
}

/// Where a new turn stands in its user's working memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// What the turn stores, for the next one to step from.
    pub ordinals: TurnOrdinals,
    /// Whether its completion may take working memory past its bound:
    /// otherwise there is nothing to trim after it.
    pub may_overflow: bool,
}

impl Position {
    /// Complete turns before it (in its session, when it has one).
    pub fn ordinal(&self) -> u64 {
        self.ordinals.session.or(self.ordinals.user).unwrap_or(0)
    }
}

#[derive(Clone)]
pub struct WorkingMemory {
    turns: Arc<dyn TurnRepository>,
    clock: Arc<dyn Clock>,
    options: WorkingMemoryOptions,
}

impl WorkingMemory {
    pub fn new(
        turns: Arc<dyn TurnRepository>,
        clock: Arc<dyn Clock>,
        options: WorkingMemoryOptions,
    ) -> Self {
        Self {
            turns,
            clock,
            options,
        }
    }

    pub fn options(&self) -> WorkingMemoryOptions {
        self.options
    }

    /// When a turn completed at `at` leaves working memory.
    pub fn expiry(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + chrono::Duration::from_std(self.options.ttl).unwrap_or(chrono::Duration::days(1))
    }

    /// The user's turns, newest first, at most `limit` (and `max_turns`).
    pub async fn recent(
        &self,
        user_id: i64,
        session_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Turn>, RepoError> {
        let limit = limit.min(self.options.max_turns);
        self.turns
            .recent(user_id, session_id, limit, self.clock.now())
            .await
    }

    /// How many turns of the user (or session) are held.
    pub async fn count(&self, user_id: i64, session_id: Option<&str>) -> Result<u64, RepoError> {
        let n = self
            .turns
            .count_complete(user_id, session_id, self.clock.now())
            .await?;
        Ok(n.min(u64::from(self.options.max_turns)))
    }

    /// Where the turn about to start stands (in `session_id` when given).
    ///
    /// Its ordinal counts every complete turn, in working memory or not (a
    /// history window aligned on the working count would slide by one turn
    /// at every chat once the bound is reached, defeating the engine's
    /// prompt cache). It is the newest complete turn's plus one: a read of
    /// one row, where counting the history grew with it; only a newest turn
    /// stored without one has the history counted.
    pub async fn position(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<Position, RepoError> {
        let held = self
            .turns
            .count_complete(user_id, session_id, self.clock.now())
            .await?;
        let bound = u64::from(self.options.max_turns);
        // A session's count says nothing of the user's other sessions.
        let may_overflow = session_id.is_some() || held + 1 > bound + u64::from(self.slack());
        let (user_newest, session_newest) = self.turns.newest_ordinals(user_id, session_id).await?;
        let user = self.next(user_newest, user_id, None).await?;
        let session = match session_id {
            Some(s) => Some(self.next(session_newest, user_id, Some(s)).await?),
            None => None,
        };
        Ok(Position {
            ordinals: TurnOrdinals {
                user: Some(user),
                session,
            },
            may_overflow,
        })
    }

    /// The ordinal after `newest`, counting the history when it has none.
    async fn next(
        &self,
        newest: NewestOrdinal,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<u64, RepoError> {
        Ok(match newest {
            NewestOrdinal::NoTurn => 0,
            NewestOrdinal::At(n) => n + 1,
            NewestOrdinal::Unknown => self.turns.count_history(user_id, session_id).await?,
        })
    }

    /// Turns working memory may hold past its bound before they are taken
    /// out, all in one statement: an eighth of the bound, at least one.
    /// Nobody sees them (every read stops at the bound). Taking one turn out
    /// at every chat once the bound was reached rewrote an old row and its
    /// index entries each time: about 28% fewer chats per second past the
    /// bound than below it (`mongars bench chat --turns 64,150`).
    pub fn slack(&self) -> u32 {
        (self.options.max_turns / 8).max(1)
    }

    /// Keep the bound after a turn completed: once the user holds more than
    /// the bound and its [`slack`](Self::slack), back to the bound.
    pub async fn trim(&self, user_id: i64) -> Result<u64, RepoError> {
        let keep = self.options.max_turns;
        self.turns
            .trim_working(user_id, keep, keep.saturating_add(self.slack()))
            .await
    }

    /// Take expired turns out; how many.
    pub async fn purge(&self) -> Result<u64, RepoError> {
        self.turns.purge_working(self.clock.now()).await
    }
}
