//! Push of the registry to an OpenTelemetry collector over OTLP/HTTP with the
//! JSON encoding (`POST {endpoint}/v1/metrics`), every `interval`.
//!
//! Names follow OpenTelemetry conventions: the `mongars_` prefix, `_total`
//! and the unit suffix go, and the namespace becomes dotted, so
//! `mongars_llm_ray_requests_total` is exported as `llm.ray.requests` and
//! `mongars_llm_ray_latency_seconds` as `llm.ray.latency` (unit `s`).
//! Values are cumulative, as in Prometheus.

use crate::Metrics;
use prometheus::proto::{MetricFamily, MetricType};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Namespaces whose underscores become dots, longest first.
const NAMESPACES: [&str; 4] = ["llm_ray", "llm_cache", "http", "llm"];

/// The OpenTelemetry name and unit of a Prometheus metric name.
pub fn otel_name(prometheus_name: &str) -> (String, &'static str) {
    let mut name = prometheus_name
        .strip_prefix("mongars_")
        .unwrap_or(prometheus_name);
    name = name.strip_suffix("_total").unwrap_or(name);
    let (name, unit) = match name.strip_suffix("_seconds") {
        Some(n) => (n, "s"),
        None => (name, "1"),
    };
    for ns in NAMESPACES {
        if let Some(rest) = name.strip_prefix(ns).and_then(|r| r.strip_prefix('_')) {
            return (format!("{}.{rest}", ns.replace('_', ".")), unit);
        }
    }
    (name.to_string(), unit)
}

/// The OTLP JSON `ExportMetricsServiceRequest` for the current values.
pub fn export_request(metrics: &Metrics, service_name: &str, start: SystemTime) -> Value {
    let now = nanos(SystemTime::now());
    let start = nanos(start);
    let list: Vec<Value> = metrics
        .gather()
        .iter()
        .filter_map(|f| family(f, &start, &now))
        .collect();
    json!({
        "resourceMetrics": [{
            "resource": { "attributes": [attr("service.name", service_name)] },
            "scopeMetrics": [{
                "scope": { "name": "mongars", "version": env!("CARGO_PKG_VERSION") },
                "metrics": list,
            }],
        }],
    })
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string()
}

fn attr(key: &str, value: &str) -> Value {
    json!({ "key": key, "value": { "stringValue": value } })
}

fn family(f: &MetricFamily, start: &str, now: &str) -> Option<Value> {
    let (name, unit) = otel_name(f.name());
    let points = |value: &dyn Fn(&prometheus::proto::Metric) -> Value| -> Vec<Value> {
        f.get_metric()
            .iter()
            .map(|m| {
                let attributes: Vec<Value> = m
                    .get_label()
                    .iter()
                    .map(|l| attr(l.name(), l.value()))
                    .collect();
                let mut p = json!({
                    "attributes": attributes,
                    "startTimeUnixNano": start,
                    "timeUnixNano": now,
                });
                if let (Value::Object(p), Value::Object(v)) = (&mut p, value(m)) {
                    p.extend(v);
                }
                p
            })
            .collect()
    };
    let data = match f.get_field_type() {
        MetricType::COUNTER => json!({ "sum": {
            "dataPoints": points(&|m| json!({ "asInt": (m.get_counter().get_value() as u64).to_string() })),
            "aggregationTemporality": 2,
            "isMonotonic": true,
        }}),
        MetricType::GAUGE => json!({ "gauge": {
            "dataPoints": points(&|m| json!({ "asInt": (m.get_gauge().get_value() as i64).to_string() })),
        }}),
        MetricType::HISTOGRAM => json!({ "histogram": {
            "dataPoints": points(&|m| {
                let h = m.get_histogram();
                let mut counts = Vec::new();
                let mut bounds = Vec::new();
                let mut below = 0u64;
                for b in h.get_bucket() {
                    counts.push((b.cumulative_count() - below).to_string());
                    below = b.cumulative_count();
                    bounds.push(b.upper_bound());
                }
                counts.push(h.get_sample_count().saturating_sub(below).to_string());
                json!({
                    "count": h.get_sample_count().to_string(),
                    "sum": h.get_sample_sum(),
                    "bucketCounts": counts,
                    "explicitBounds": bounds,
                })
            }),
            "aggregationTemporality": 2,
        }}),
        _ => return None,
    };
    let mut metric = json!({ "name": name, "description": f.help(), "unit": unit });
    if let (Value::Object(m), Value::Object(d)) = (&mut metric, data) {
        m.extend(d);
    }
    Some(metric)
}

/// Where the exporter pushes.
pub struct OtlpTarget {
    /// Base URL (`/v1/metrics` is appended).
    pub endpoint: String,
    /// Trust for an `https://` endpoint.
    pub tls: mongars_net::Tls,
}

/// Push every `interval` until the task is aborted. Failures are logged
/// once per change of state, not at every tick.
pub async fn run(metrics: Metrics, target: OtlpTarget, interval: Duration, service_name: String) {
    let url = format!("{}/v1/metrics", target.endpoint.trim_end_matches('/'));
    let client = match target
        .tls
        .client_builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "OTLP exporter disabled: no HTTP client");
            return;
        }
    };
    let start = SystemTime::now();
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    let mut failing = false;
    loop {
        tick.tick().await;
        let body = export_request(&metrics, &service_name, start);
        let result = client.post(&url).json(&body).send().await;
        match result.map(|r| r.status()) {
            Ok(s) if s.is_success() => {
                if failing {
                    tracing::info!("OTLP export recovered");
                }
                failing = false;
            }
            other => {
                if !failing {
                    let reason = match other {
                        Ok(s) => format!("status {s}"),
                        Err(e) => e.without_url().to_string(),
                    };
                    tracing::warn!(%reason, "OTLP metrics export failed");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_opentelemetry_conventions() {
        assert_eq!(
            otel_name("mongars_llm_ray_requests_total"),
            ("llm.ray.requests".into(), "1")
        );
        assert_eq!(
            otel_name("mongars_llm_ray_scaling_events_total"),
            ("llm.ray.scaling_events".into(), "1")
        );
        assert_eq!(
            otel_name("mongars_llm_ray_latency_seconds"),
            ("llm.ray.latency".into(), "s")
        );
        assert_eq!(
            otel_name("mongars_http_request_duration_seconds"),
            ("http.request_duration".into(), "s")
        );
        assert_eq!(
            otel_name("mongars_llm_breaker_state"),
            ("llm.breaker_state".into(), "1")
        );
    }

    #[test]
    fn export_request_carries_counters_and_histograms() {
        let m = Metrics::new();
        m.ray.requests.inc_by(3);
        m.ray.failures.with_label_values(&["scaling"]).inc();
        m.ray.latency.with_label_values(&["0"]).observe(0.2);
        let body = export_request(&m, "svc", SystemTime::now());
        let metrics = &body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
        let find = |n: &str| {
            metrics
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == n)
                .cloned()
                .unwrap_or_else(|| panic!("{n} missing"))
        };
        assert_eq!(
            find("llm.ray.requests")["sum"]["dataPoints"][0]["asInt"],
            "3"
        );
        let failures = find("llm.ray.failures");
        let point = &failures["sum"]["dataPoints"][0];
        assert_eq!(point["attributes"][0]["value"]["stringValue"], "scaling");
        let h = &find("llm.ray.latency")["histogram"]["dataPoints"][0];
        assert_eq!(h["count"], "1");
        let counts: Vec<u64> = h["bucketCounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 1);
        assert_eq!(
            counts.len(),
            h["explicitBounds"].as_array().unwrap().len() + 1
        );
        assert_eq!(
            body["resourceMetrics"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "svc"
        );
    }
}
