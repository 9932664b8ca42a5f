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
    /// Whether working memory is to be trimmed back to its bound once the
    /// turn completes (see [`WorkingMemory::trim_due`]).
    pub trim_due: bool,
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

    /// Where the turn about to start stands (in `session_id` when given).
    ///
    /// Its ordinal counts every complete turn, in working memory or not (a
    /// history window aligned on the working count would slide by one turn
    /// at every chat once the bound is reached, defeating the engine's
    /// prompt cache). It is the newest complete turn's plus one: a read of
    /// one row, where counting the history grew with it; only a newest turn
    /// stored without one has the history counted. Whether a trim is due
    /// follows from the user's ordinal too, so nothing is counted.
    pub async fn position(
        &self,
        user_id: i64,
        session_id: Option<&str>,
    ) -> Result<Position, RepoError> {
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
            trim_due: self.trim_due(user),
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

    /// Whether the turn at user ordinal `ordinal` (complete turns of the
    /// user before it) trims working memory once it completes: when the
    /// user's complete turns then pass the bound by a multiple of the
    /// [`slack`](Self::slack). Every complete turn adds at most one to
    /// working memory and exactly one to the ordinal, so a trim back to the
    /// bound every `slack` turns keeps at most `bound + slack` held, with no
    /// count of working memory on the chat's path (a count, and a check
    /// that walked the bound and its slack at every chat in a session, read
    /// more index entries the more turns were held). Two turns of a user
    /// started together may share an ordinal; a trim missed that way is
    /// made up `slack` turns later.
    pub fn trim_due(&self, ordinal: u64) -> bool {
        let bound = u64::from(self.options.max_turns);
        let complete = ordinal + 1;
        complete > bound && (complete - bound).is_multiple_of(u64::from(self.slack()))
    }

    /// Back to the bound: the user's oldest working turns beyond it leave
    /// working memory (nothing is written when it holds no more).
    pub async fn trim(&self, user_id: i64) -> Result<u64, RepoError> {
        let keep = self.options.max_turns;
        self.turns.trim_working(user_id, keep).await
    }

    /// Take expired turns out; how many.
    pub async fn purge(&self) -> Result<u64, RepoError> {
        self.turns.purge_working(self.clock.now()).await
    }
}
