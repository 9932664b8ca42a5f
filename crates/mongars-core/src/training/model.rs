//! What curation, datasets, runs and the adapter registry are made of.

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
