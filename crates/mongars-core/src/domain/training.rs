//! What curation, datasets, runs and the adapter registry are made of
//! (used through `training::model`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A user's verdict on a reply.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }
}

/// Where a sample came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleSource {
    /// A rated turn: its reply, or the user's correction of it.
    Feedback,
    /// An exchange the user wrote as an example.
    Example,
}

impl SampleSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleSource::Feedback => "feedback",
            SampleSource::Example => "example",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "example" {
            SampleSource::Example
        } else {
            SampleSource::Feedback
        }
    }
}

/// Whether a sample may enter datasets.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SampleStatus {
    Ready,
    /// Personal data was found: an operator approves or drops it first.
    Held,
    Dropped,
}

impl SampleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SampleStatus::Ready => "ready",
            SampleStatus::Held => "held",
            SampleStatus::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "ready" => SampleStatus::Ready,
            "held" => SampleStatus::Held,
            _ => SampleStatus::Dropped,
        }
    }
}

/// A supervised example, personal data already replaced.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub id: String,
    pub user_id: i64,
    pub source: SampleSource,
    pub turn_id: Option<String>,
    pub prompt: String,
    pub response: String,
    /// Kinds of personal data replaced (`email`, `phone`...).
    pub pii: Vec<String>,
    pub status: SampleStatus,
    pub created_at: DateTime<Utc>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// Which part of a dataset an item is in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    HeldOut,
}

impl Split {
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::HeldOut => "held_out",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "held_out" {
            Split::HeldOut
        } else {
            Split::Train
        }
    }
}

/// One item of a dataset version: a copy of a sample as it was.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatasetItem {
    pub sample_id: String,
    #[serde(skip)]
    pub user_id: i64,
    pub split: Split,
    pub prompt: String,
    pub response: String,
}

/// An immutable dataset version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dataset {
    pub id: String,
    pub version: i64,
    /// SHA-256 over the items in order (split, prompt, response).
    pub content_hash: String,
    pub seed: i64,
    pub held_out_share: f64,
    pub samples: i64,
    pub train: i64,
    pub held_out: i64,
    pub created_at: DateTime<Utc>,
}

/// Where an adapter is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdapterStatus {
    /// Passed the run's quality gate; waits for an operator.
    Candidate,
    Approved,
    Active,
    /// Was active, replaced or rolled back; may be activated again.
    Retired,
    Rejected,
}

impl AdapterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterStatus::Candidate => "candidate",
            AdapterStatus::Approved => "approved",
            AdapterStatus::Active => "active",
            AdapterStatus::Retired => "retired",
            AdapterStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "approved" => AdapterStatus::Approved,
            "active" => AdapterStatus::Active,
            "retired" => AdapterStatus::Retired,
            "rejected" => AdapterStatus::Rejected,
            _ => AdapterStatus::Candidate,
        }
    }

    /// Whether an operator has let it serve.
    pub fn approved(self) -> bool {
        matches!(
            self,
            AdapterStatus::Approved | AdapterStatus::Active | AdapterStatus::Retired
        )
    }
}

/// A registered LoRA adapter for the embedded model.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adapter {
    pub id: String,
    pub version: i64,
    pub status: AdapterStatus,
    /// File name in the adapters folder.
    pub file: String,
    pub sha256: String,
    pub base_model_sha256: String,
    pub dataset_hash: String,
    pub run_id: Option<String>,
    /// The run's figures (perplexities, gate verdict).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metrics: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
}

/// Where a training run is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waits for the node to be idle.
    Queued,
    Running,
    /// Stopped at a step because the node was needed; resumes when idle.
    Paused,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "running" => RunStatus::Running,
            "paused" => RunStatus::Paused,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => RunStatus::Queued,
        }
    }

    /// Whether the run still has work to do.
    pub fn open(self) -> bool {
        matches!(
            self,
            RunStatus::Queued | RunStatus::Running | RunStatus::Paused
        )
    }
}

/// What a run trains: a chat adapter on the replies, or an embedding
/// adapter by masked next-token prediction.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunObjective {
    Supervised,
    Mntp,
}

impl RunObjective {
    pub fn as_str(self) -> &'static str {
        match self {
            RunObjective::Supervised => "supervised",
            RunObjective::Mntp => "mntp",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "mntp" {
            RunObjective::Mntp
        } else {
            RunObjective::Supervised
        }
    }
}

/// A training run on a dataset version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainingRun {
    pub id: String,
    pub dataset_id: String,
    pub objective: RunObjective,
    pub status: RunStatus,
    pub steps_total: i64,
    pub steps_done: i64,
    pub tokens: i64,
    /// Loss of the latest step.
    pub loss: Option<f64>,
    /// Times the run stopped for a chat and resumed later.
    pub pauses: i64,
    /// CPU time the run used (all threads).
    pub cpu_seconds: f64,
    /// `cpu_seconds` x the configured watts per core, in watt-hours.
    pub energy_wh: f64,
    /// Perplexities before and after, the gate's verdict.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub figures: serde_json::Value,
    pub error_code: Option<String>,
    /// The adapter it registered, when it passed its gate.
    pub adapter_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}
