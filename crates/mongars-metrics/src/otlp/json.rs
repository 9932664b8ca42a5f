//! The OTLP/HTTP JSON encoding of a [`Snapshot`] (`application/json`):
//! 64-bit integers as strings, enums as numbers, as the protocol asks.

use super::model::{Attribute, Data, HistogramPoint, Point, Snapshot, Times};
use serde_json::{Value, json};

pub fn encode(s: &Snapshot) -> Value {
    let metrics: Vec<Value> = s
        .metrics
        .iter()
        .map(|m| {
            let data = match &m.data {
                Data::Sum(points) => json!({ "sum": {
                    "dataPoints": points.iter().map(point).collect::<Vec<_>>(),
                    "aggregationTemporality": 2,
                    "isMonotonic": true,
                }}),
                Data::Gauge(points) => json!({ "gauge": {
                    "dataPoints": points.iter().map(point).collect::<Vec<_>>(),
                }}),
                Data::Histogram(points) => json!({ "histogram": {
                    "dataPoints": points.iter().map(histogram).collect::<Vec<_>>(),
                    "aggregationTemporality": 2,
                }}),
            };
            let mut metric =
                json!({ "name": m.name, "description": m.description, "unit": m.unit });
            if let (Value::Object(m), Value::Object(d)) = (&mut metric, data) {
                m.extend(d);
            }
            metric
        })
        .collect();
    json!({
        "resourceMetrics": [{
            "resource": { "attributes": attributes(&s.resource) },
            "scopeMetrics": [{
                "scope": { "name": "mongars", "version": s.scope_version },
                "metrics": metrics,
            }],
        }],
    })
}

fn attributes(list: &[Attribute]) -> Vec<Value> {
    list.iter()
        .map(|(k, v)| json!({ "key": k, "value": { "stringValue": v } }))
        .collect()
}

fn with_times(mut v: Value, attrs: &[Attribute], t: &Times) -> Value {
    if let Value::Object(o) = &mut v {
        o.insert("attributes".into(), Value::Array(attributes(attrs)));
        o.insert(
            "startTimeUnixNano".into(),
            t.start_unix_nano.to_string().into(),
        );
        o.insert("timeUnixNano".into(), t.unix_nano.to_string().into());
    }
    v
}

fn point(p: &Point) -> Value {
    with_times(
        json!({ "asInt": p.value.to_string() }),
        &p.attributes,
        &p.times,
    )
}

fn histogram(h: &HistogramPoint) -> Value {
    with_times(
        json!({
            "count": h.count.to_string(),
            "sum": h.sum,
            "bucketCounts": h.bucket_counts.iter().map(u64::to_string).collect::<Vec<_>>(),
            "explicitBounds": h.bounds,
        }),
        &h.attributes,
        &h.times,
    )
}
