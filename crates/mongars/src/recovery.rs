//! Turns left behind: failed as `conversation.interrupted` when their
//! process is gone (at start-up, then now and then), and this process's own
//! when it stops. See `mongars_core::conversation::recovery`.

use crate::instance;
use mongars_config::Settings;
use mongars_core::conversation::recovery::{INTERRUPTED, fail_interrupted};
use mongars_core::ports::TurnRepository;
use mongars_store::{Database, SqlTurnRepository};
use std::time::Duration;

/// Fail the pending turns of dead processes, and those older than any turn
/// can run; how many.
pub async fn recover(db: &Database, settings: &Settings) -> anyhow::Result<u64> {
    let repo = SqlTurnRepository::new(db.clone());
    let longest = chrono::Duration::from_std(instance::longest_turn(settings))?;
    let stale_before = chrono::Utc::now() - longest;
    Ok(fail_interrupted(&repo, instance::liveness, stale_before).await?)
}

/// [`recover`] every `every`, for turns of replicas on other machines that
/// died (their age is the only sign).
pub async fn recovery_loop(db: Database, settings: std::sync::Arc<Settings>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = recover(&db, &settings).await {
            tracing::warn!(error = %format!("{e:#}"), "recovering interrupted turns failed");
        }
    }
}

/// This process is stopping: its turns still pending will not finish.
pub async fn interrupt_own(db: &Database) {
    let repo = SqlTurnRepository::new(db.clone());
    match repo.fail_pending_of(instance::current(), INTERRUPTED).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            turns = n,
            "turns in flight at shutdown failed as interrupted"
        ),
        Err(e) => tracing::warn!(error = %e, "could not fail the turns in flight at shutdown"),
    }
}
