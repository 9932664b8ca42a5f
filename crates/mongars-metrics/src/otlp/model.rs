//! The registry's current values as OTLP's data model: one resource, one
//! scope, and per metric family a cumulative monotonic sum (counters), a
//! gauge or a cumulative explicit-bucket histogram. Both encodings (`json`
//! and `proto`) write this.

use super::otel_name;
use crate::Metrics;
use prometheus::proto::{MetricFamily, MetricType};
use std::time::{SystemTime, UNIX_EPOCH};

/// A string attribute.
pub type Attribute = (String, String);

pub struct Snapshot {
    pub resource: Vec<Attribute>,
    pub scope_version: &'static str,
    pub metrics: Vec<Metric>,
}

pub struct Metric {
    pub name: String,
    pub description: String,
    pub unit: &'static str,
    pub data: Data,
}

pub enum Data {
    /// Cumulative and monotonic.
    Sum(Vec<Point>),
    Gauge(Vec<Point>),
    /// Cumulative.
    Histogram(Vec<HistogramPoint>),
}

pub struct Times {
    pub start_unix_nano: u64,
    pub unix_nano: u64,
}

pub struct Point {
    pub attributes: Vec<Attribute>,
    pub times: Times,
    pub value: i64,
}

pub struct HistogramPoint {
    pub attributes: Vec<Attribute>,
    pub times: Times,
    pub count: u64,
    pub sum: f64,
    /// One more than `bounds`: the last counts what is above them all.
    pub bucket_counts: Vec<u64>,
    pub bounds: Vec<f64>,
}

pub fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// What `metrics` hold now, counted from `start`.
pub fn snapshot(metrics: &Metrics, resource: Vec<Attribute>, start: SystemTime) -> Snapshot {
    let (start, now) = (nanos(start), nanos(SystemTime::now()));
    Snapshot {
        resource,
        scope_version: env!("CARGO_PKG_VERSION"),
        metrics: metrics
            .gather()
            .iter()
            .filter_map(|f| family(f, start, now))
            .collect(),
    }
}

fn family(f: &MetricFamily, start: u64, now: u64) -> Option<Metric> {
    let (name, unit) = otel_name(f.name());
    let times = || Times {
        start_unix_nano: start,
        unix_nano: now,
    };
    let attributes = |m: &prometheus::proto::Metric| -> Vec<Attribute> {
        m.get_label()
            .iter()
            .map(|l| (l.name().to_string(), l.value().to_string()))
            .collect()
    };
    let points = |value: &dyn Fn(&prometheus::proto::Metric) -> i64| -> Vec<Point> {
        f.get_metric()
            .iter()
            .map(|m| Point {
                attributes: attributes(m),
                times: times(),
                value: value(m),
            })
            .collect()
    };
    let data = match f.get_field_type() {
        MetricType::COUNTER => Data::Sum(points(&|m| m.get_counter().get_value() as i64)),
        MetricType::GAUGE => Data::Gauge(points(&|m| m.get_gauge().get_value() as i64)),
        MetricType::HISTOGRAM => Data::Histogram(
            f.get_metric()
                .iter()
                .map(|m| {
                    let h = m.get_histogram();
                    let mut bucket_counts = Vec::new();
                    let mut bounds = Vec::new();
                    let mut below = 0u64;
                    for b in h.get_bucket() {
                        bucket_counts.push(b.cumulative_count().saturating_sub(below));
                        below = b.cumulative_count();
                        bounds.push(b.upper_bound());
                    }
                    bucket_counts.push(h.get_sample_count().saturating_sub(below));
                    HistogramPoint {
                        attributes: attributes(m),
                        times: times(),
                        count: h.get_sample_count(),
                        sum: h.get_sample_sum(),
                        bucket_counts,
                        bounds,
                    }
                })
                .collect(),
        ),
        _ => return None,
    };
    Some(Metric {
        name,
        description: f.help().to_string(),
        unit,
        data,
    })
}
