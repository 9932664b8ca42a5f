//! Push of the registry to an OpenTelemetry collector over OTLP/HTTP
//! (`POST {endpoint}/v1/metrics`) every `interval`, in the protobuf encoding
//! (the protocol's default) or JSON. The resource carries the attributes the
//! caller gives (service name, version, instance, host).
//!
//! A dead or slow collector costs nothing but this task: a push has its own
//! timeout (shorter than the interval), a tick missed is skipped, not
//! queued, and nothing else waits for it.
//!
//! Names follow OpenTelemetry conventions: the `mongars_` prefix, `_total`
//! and the unit suffix go, and the namespace becomes dotted, so
//! `mongars_llm_ray_requests_total` is exported as `llm.ray.requests` and
//! `mongars_llm_ray_latency_seconds` as `llm.ray.latency` (unit `s`).
//! Values are cumulative, as in Prometheus.

mod json;
mod model;
mod proto;

use crate::Metrics;
pub use model::Attribute;
use std::time::{Duration, SystemTime};

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

/// The body encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// Where the exporter pushes.
pub struct OtlpTarget {
    /// Base URL (`/v1/metrics` is appended).
    pub endpoint: String,
    /// Trust for an `https://` endpoint.
    pub tls: mongars_net::Tls,
    pub encoding: Encoding,
}

/// The export request for the current values, as (content type, body).
pub fn export_body(
    metrics: &Metrics,
    encoding: Encoding,
    resource: &[Attribute],
    start: SystemTime,
) -> (&'static str, Vec<u8>) {
    let snapshot = model::snapshot(metrics, resource.to_vec(), start);
    match encoding {
        Encoding::Protobuf => ("application/x-protobuf", proto::encode(&snapshot)),
        Encoding::Json => (
            "application/json",
            json::encode(&snapshot).to_string().into_bytes(),
        ),
    }
}

/// Push every `interval` until the task is aborted. Failures are logged
/// once per change of state, not at every tick.
pub async fn run(
    metrics: Metrics,
    target: OtlpTarget,
    interval: Duration,
    resource: Vec<Attribute>,
) {
    let url = format!("{}/v1/metrics", target.endpoint.trim_end_matches('/'));
    // A push never outlives its interval (at most 10 s): a collector that
    // does not answer is given up on before the next one is due.
    let timeout = interval
        .mul_f64(0.8)
        .clamp(Duration::from_millis(100), Duration::from_secs(10));
    let client = match target
        .tls
        .client_builder()
        .connect_timeout(timeout)
        .timeout(timeout)
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
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tick.tick().await;
    let mut failing = false;
    loop {
        tick.tick().await;
        let (content_type, body) = export_body(&metrics, target.encoding, &resource, start);
        let result = client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await;
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
        let resource = [("service.name".to_string(), "svc".to_string())];
        let (kind, bytes) = export_body(&m, Encoding::Json, &resource, SystemTime::now());
        assert_eq!(kind, "application/json");
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
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
