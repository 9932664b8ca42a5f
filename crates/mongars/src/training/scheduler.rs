//! The node's training scheduler ("sleep"): queued runs train only while
//! the node is idle (no chat for `training.idle_minutes`, CPU use below
//! `training.idle_cpu_percent`), one at a time across replicas (a run is
//! claimed in the database), and a chat arriving pauses the run at its next
//! step; it resumes at the next idle spell. Admins' sockets get a
//! `training.run` event at every step and change.

use super::job::{JobContext, Notify, execute, mark_failed};
use mongars_core::auth::AuthService;
use mongars_core::domain::Role;
use mongars_core::ports::{Event, EventBus};
use mongars_core::training::idle::Activity;
use mongars_core::training::model::{RunStatus, TrainingRun};
use mongars_metrics::Metrics;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// A running process that says nothing for this long has stopped: its run
/// may be taken over.
const STALE: chrono::Duration = chrono::Duration::minutes(2);

/// The machine's CPU use between two readings of /proc/stat.
#[derive(Default)]
pub struct CpuMeter {
    prev: Option<(u64, u64)>,
}

impl CpuMeter {
    fn read() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().next()?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let total: u64 = v.iter().sum();
        // idle and iowait
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        Some((total - idle, total))
    }

    /// Percent of the machine busy since the last call (`None` the first
    /// time, or without /proc).
    pub fn percent(&mut self) -> Option<f64> {
        let now = Self::read()?;
        let prev = self.prev.replace(now)?;
        let (busy, total) = (now.0.saturating_sub(prev.0), now.1.saturating_sub(prev.1));
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }
}

/// Everything the scheduler needs besides the job's context.
pub struct Scheduler {
    pub ctx: JobContext,
    pub activity: Arc<Activity>,
    pub metrics: Metrics,
    /// How often it looks for work and for an idle spell.
    pub poll: Duration,
    /// True once the process stops: the scheduler's wait ends at once,
    /// and a run pauses at its next step.
    pub stop: watch::Receiver<bool>,
}

/// Wait for the next look at `tick`; false when the process stopped first
/// (or nothing can tell it to stop any more).
async fn next_look(tick: &mut tokio::time::Interval, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        biased;
        _ = stop.wait_for(|stopped| *stopped) => false,
        _ = tick.tick() => true,
    }
}

/// The events and metrics of runs: every admin's sockets hear of each step.
pub fn notifier(
    bus: Option<Arc<dyn EventBus>>,
    auth: Arc<AuthService>,
    metrics: Metrics,
) -> (Notify, impl Future<Output = ()> + Send + 'static) {
    let admins: Arc<RwLock<Vec<(i64, String)>>> = Arc::default();
    let refresh = {
        let admins = admins.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                if let Ok(users) = auth.list_users().await {
                    let list = users
                        .into_iter()
                        .filter(|u| u.role == Role::Admin && !u.disabled)
                        .map(|u| (u.id, u.username))
                        .collect();
                    *admins.write().unwrap_or_else(|p| p.into_inner()) = list;
                }
            }
        }
    };
    let last_tokens = AtomicI64::new(0);
    let notify = move |run: &TrainingRun, rate: Option<f64>| {
        if rate.is_some() {
            metrics.training.steps.inc();
            let before = last_tokens.swap(run.tokens, Ordering::SeqCst);
            let delta = if run.tokens >= before {
                run.tokens - before
            } else {
                run.tokens
            };
            metrics.training.tokens.inc_by(delta.max(0) as u64);
        }
        let Some(bus) = &bus else { return };
        let data = serde_json::json!({ "run": run, "tokens_per_second": rate });
        for (id, name) in admins.read().unwrap_or_else(|p| p.into_inner()).iter() {
            bus.publish(Event::new(*id, name, "training.run", data.clone()));
        }
    };
    (Arc::new(notify), refresh)
}

impl Scheduler {
    fn idle(&self, cpu: &mut CpuMeter) -> bool {
        let t = &self.ctx.settings.training;
        let quiet = chrono::Duration::milliseconds((t.idle_minutes * 60_000.0) as i64);
        if !self.activity.idle_for(quiet) {
            return false;
        }
        if t.idle_cpu_percent >= 100.0 {
            return true;
        }
        cpu.percent().is_some_and(|p| p < t.idle_cpu_percent)
    }

    /// Look for work every `poll` until `stop` is raised; a stop ends the
    /// wait between two looks at once, so the process exits without
    /// waiting for the next look.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.poll);
        let mut cpu = CpuMeter::default();
        let mut stop = self.stop.clone();
        while next_look(&mut tick, &mut stop).await {
            if let Err(e) = self.once(&mut cpu).await {
                tracing::warn!(error = %format!("{e:#}"), "training scheduler");
            }
        }
    }

    /// One look: train the oldest open run if the node is idle.
    pub async fn once(&self, cpu: &mut CpuMeter) -> anyhow::Result<()> {
        let Some(run) = self.ctx.runs.next_open().await? else {
            return Ok(());
        };
        if !self.idle(cpu) {
            return Ok(());
        }
        let now = chrono::Utc::now();
        if !self.ctx.runs.claim(&run.id, now, now - STALE).await? {
            return Ok(());
        }
        let Some(run) = self.ctx.runs.get(&run.id).await? else {
            return Ok(());
        };
        tracing::info!(run = %run.id, step = run.steps_done, "training run starts or resumes");
        let seen = self.activity.requests();
        let (activity, stop) = (self.activity.clone(), self.stop.clone());
        let pause = Arc::new(move || activity.requests() != seen || *stop.borrow());
        let m = &self.metrics.training;
        m.running.set(1);
        let outcome = execute(self.ctx.clone(), run.clone(), pause).await;
        m.running.set(0);
        match outcome {
            Ok(r) if r.status == RunStatus::Paused => {
                m.pauses.inc();
                tracing::info!(run = %r.id, step = r.steps_done, "training run paused: a chat arrived");
            }
            Ok(r) => {
                let outcome = if r.adapter_id.is_some() {
                    "candidate"
                } else {
                    "rejected"
                };
                m.runs.with_label_values(&[outcome]).inc();
                tracing::info!(run = %r.id, outcome, adapter = ?r.adapter_id, energy_wh = r.energy_wh, "training run finished");
            }
            Err(e) => {
                m.runs.with_label_values(&["failed"]).inc();
                tracing::error!(run = %run.id, error = %format!("{e:#}"), "training run failed");
                mark_failed(self.ctx.runs.as_ref(), run, Some(&self.ctx.notify)).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::next_look;
    use std::time::Duration;
    use tokio::sync::watch;

    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_wait_for_the_next_look_at_once() {
        let (stopping, mut stop) = watch::channel(false);
        let mut tick = tokio::time::interval(Duration::from_secs(7200));
        // Not stopped: the next look comes with the tick.
        assert!(next_look(&mut tick, &mut stop).await);
        let waiting = tokio::spawn(async move {
            let stopped = !next_look(&mut tick, &mut stop).await;
            (stopped, next_look(&mut tick, &mut stop).await)
        });
        // The waiter is parked: an hour passes and it is still waiting.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!waiting.is_finished());
        stopping.send_replace(true);
        // Woken by the stop, not by time: the clock is paused and the tick
        // an hour away would come first if the wake were lost.
        let (stopped, again) = tokio::time::timeout(Duration::from_secs(1800), waiting)
            .await
            .expect("woken by the stop")
            .unwrap();
        assert!(stopped);
        // A wait that starts after the stop ends at once.
        assert!(!again);
    }
}
