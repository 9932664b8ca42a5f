//! Metrics of learning on the device: what users share, what operators
//! review, runs and their steps, and adapter switches.

use super::{counter, histogram, reg};
use prometheus::HistogramVec;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

#[derive(Clone)]
pub struct TrainingMetrics {
    /// rating: `up`, `down`
    pub feedback: IntCounterVec,
    /// status: `ready`, `held` (personal data found)
    pub samples: IntCounterVec,
    /// outcome: `approved`, `dropped`
    pub reviews: IntCounterVec,
    /// outcome: `candidate`, `rejected`, `failed`, `cancelled`
    pub runs: IntCounterVec,
    pub steps: IntCounter,
    pub tokens: IntCounter,
    /// Runs paused because a chat arrived.
    pub pauses: IntCounter,
    /// 1 while a run is training on this node.
    pub running: IntGauge,
    /// action: `activate`, `rollback`, `reconcile`
    pub switches: IntCounterVec,
    /// action
    pub switch_seconds: HistogramVec,
}

impl TrainingMetrics {
    pub(crate) fn new(r: &Registry) -> Self {
        Self {
            feedback: counter(
                r,
                "mongars_training_feedback_total",
                "Ratings of replies, by rating.",
                &["rating"],
            ),
            samples: counter(
                r,
                "mongars_training_samples_total",
                "Training samples made, by status (held: personal data found).",
                &["status"],
            ),
            reviews: counter(
                r,
                "mongars_training_reviews_total",
                "Held samples reviewed by operators, by outcome.",
                &["outcome"],
            ),
            runs: counter(
                r,
                "mongars_training_runs_total",
                "Training runs finished, by outcome.",
                &["outcome"],
            ),
            steps: reg(
                r,
                IntCounter::new("mongars_training_steps_total", "Optimizer steps taken.")
                    .expect("valid counter"),
            ),
            tokens: reg(
                r,
                IntCounter::new("mongars_training_tokens_total", "Tokens trained on.")
                    .expect("valid counter"),
            ),
            pauses: reg(
                r,
                IntCounter::new(
                    "mongars_training_pauses_total",
                    "Runs paused because the node was no longer idle.",
                )
                .expect("valid counter"),
            ),
            running: reg(
                r,
                IntGauge::new("mongars_training_running", "1 while a run trains here.")
                    .expect("valid gauge"),
            ),
            switches: counter(
                r,
                "mongars_adapter_switches_total",
                "Adapter switches of the embedded engine, by action.",
                &["action"],
            ),
            switch_seconds: histogram(
                r,
                "mongars_adapter_switch_seconds",
                "Time to build the engine with the new adapter.",
                &["action"],
            ),
        }
    }
}

impl super::Metrics {
    pub fn training_feedback(&self, rating: &str) {
        self.training.feedback.with_label_values(&[rating]).inc();
    }

    pub fn training_sample(&self, status: &str) {
        self.training.samples.with_label_values(&[status]).inc();
    }

    pub fn training_review(&self, outcome: &str) {
        self.training.reviews.with_label_values(&[outcome]).inc();
    }

    pub fn adapter_switch(&self, action: &str, took: std::time::Duration) {
        self.training.switches.with_label_values(&[action]).inc();
        self.training
            .switch_seconds
            .with_label_values(&[action])
            .observe(took.as_secs_f64());
    }
}
