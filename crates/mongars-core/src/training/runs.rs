//! The queue of training runs: operators queue a run of a dataset version;
//! the node's idle scheduler (or `mongars train run --dataset`) carries it
//! out. One run at a time is open: a second is refused while one waits or
//! trains.

use super::model::{RunObjective, RunStatus, TrainingRun};
use crate::error::CoreError;
use crate::ports::{Clock, CurationRepository, RunRepository};
use std::sync::Arc;

/// Most steps a run may be asked for.
pub const MAX_STEPS: i64 = 100_000;

pub struct RunQueue {
    runs: Arc<dyn RunRepository>,
    datasets: Arc<dyn CurationRepository>,
    clock: Arc<dyn Clock>,
    /// Steps of a run that names none (`training.steps`).
    default_steps: i64,
}

impl RunQueue {
    pub fn new(
        runs: Arc<dyn RunRepository>,
        datasets: Arc<dyn CurationRepository>,
        clock: Arc<dyn Clock>,
        default_steps: i64,
    ) -> Self {
        Self {
            runs,
            datasets,
            clock,
            default_steps,
        }
    }

    pub fn repository(&self) -> &Arc<dyn RunRepository> {
        &self.runs
    }

    /// Queue a run of `dataset_id` (default: the newest version).
    pub async fn create(
        &self,
        dataset_id: Option<&str>,
        objective: RunObjective,
        steps: Option<i64>,
    ) -> Result<TrainingRun, CoreError> {
        let steps = steps.unwrap_or(self.default_steps);
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(CoreError::validation(
                "steps",
                format!("steps must be 1 to {MAX_STEPS}"),
            ));
        }
        if objective != RunObjective::Supervised {
            return Err(CoreError::validation(
                "objective",
                "runs in the server train chat adapters (supervised); MNTP embedding runs \
                 are made with `mongars train run --data FILE --objective mntp`",
            ));
        }
        let dataset = match dataset_id {
            Some(id) => self.datasets.dataset(id).await?,
            None => self.datasets.datasets().await?.into_iter().next(),
        }
        .ok_or(CoreError::NotFound("Dataset"))?;
        if let Some(open) = self.runs.next_open().await? {
            return Err(CoreError::Conflict {
                code: "training.run_active",
                message: format!(
                    "Run {} is {}; one run at a time",
                    open.id,
                    open.status.as_str()
                ),
            });
        }
        let now = self.clock.now();
        let run = TrainingRun {
            id: uuid::Uuid::new_v4().to_string(),
            dataset_id: dataset.id,
            objective,
            status: RunStatus::Queued,
            steps_total: steps,
            steps_done: 0,
            tokens: 0,
            loss: None,
            pauses: 0,
            cpu_seconds: 0.0,
            energy_wh: 0.0,
            figures: serde_json::Value::Null,
            error_code: None,
            adapter_id: None,
            created_at: now,
            started_at: None,
            updated_at: now,
            finished_at: None,
        };
        self.runs.insert(&run).await?;
        Ok(run)
    }

    pub async fn get(&self, id: &str) -> Result<TrainingRun, CoreError> {
        self.runs
            .get(id)
            .await?
            .ok_or(CoreError::NotFound("Training run"))
    }

    pub async fn list(&self, limit: u32) -> Result<Vec<TrainingRun>, CoreError> {
        Ok(self.runs.list(limit).await?)
    }

    /// Cancel a run that waits (queued or paused).
    pub async fn cancel(&self, id: &str) -> Result<TrainingRun, CoreError> {
        let mut run = self.get(id).await?;
        match run.status {
            RunStatus::Queued | RunStatus::Paused => {}
            RunStatus::Running => {
                return Err(CoreError::Conflict {
                    code: "training.run_active",
                    message: "The run is training; it can be cancelled once paused or done".into(),
                });
            }
            _ => return Ok(run),
        }
        run.status = RunStatus::Cancelled;
        run.updated_at = self.clock.now();
        run.finished_at = Some(run.updated_at);
        self.runs.save(&run).await?;
        Ok(run)
    }
}
