//! Turns that a process left `pending` when it died (killed, out of memory,
//! power cut) are failed with `conversation.interrupted`, so that no turn
//! stays pending for ever.
//!
//! Each turn records the process that runs it (its owner). A process on the
//! same machine can tell for certain whether another is still running, so a
//! restarted server fails the turns of its dead predecessor at once, while a
//! replica on the same machine keeps its own. Owners on other machines
//! cannot be checked: their turns are failed once they are older than the
//! longest a turn can possibly run.

use crate::error::CoreError;
use crate::ports::TurnRepository;
use chrono::{DateTime, Utc};

/// Code stored on a turn whose process ended before the turn did.
pub const INTERRUPTED: &str = "conversation.interrupted";

/// What is known about the process that owns some pending turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// On another machine, or not a process identity this one can check.
    Unknown,
}

/// Fail the pending turns of dead owners, and every pending turn started
/// before `stale_before`. Returns how many turns were failed.
pub async fn fail_interrupted(
    turns: &dyn TurnRepository,
    liveness: impl Fn(&str) -> Liveness,
    stale_before: DateTime<Utc>,
) -> Result<u64, CoreError> {
    let mut failed = 0;
    for owner in turns.pending_owners().await? {
        if liveness(&owner) == Liveness::Dead {
            let n = turns.fail_pending_of(&owner, INTERRUPTED).await?;
            if n > 0 {
                tracing::warn!(
                    owner,
                    turns = n,
                    "turns of a process that ended failed as interrupted"
                );
            }
            failed += n;
        }
    }
    let stale = turns.fail_pending_before(stale_before, INTERRUPTED).await?;
    if stale > 0 {
        tracing::warn!(
            turns = stale,
            "turns pending longer than any reply can take failed as interrupted"
        );
    }
    Ok(failed + stale)
}
