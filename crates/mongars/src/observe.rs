//! Side tasks of `serve` for observability: the separate metrics listener
//! (`metrics.listen`) and the OTLP exporter (`telemetry.otlp_endpoint`).

use anyhow::Context;
use mongars_config::Settings;
use mongars_metrics::Metrics;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Start what the settings ask for; the caller aborts the tasks on shutdown.
pub async fn start(settings: &Settings, metrics: &Metrics) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    let m = &settings.metrics;
    if m.enabled && !m.listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&m.listen)
            .await
            .with_context(|| format!("metrics.listen: cannot listen on {}", m.listen))?;
        tracing::info!(address = %m.listen, "metrics listener started");
        let token = m
            .scrape_token
            .is_set()
            .then(|| m.scrape_token.expose().to_string());
        let router = mongars_http::metrics_listener_router(metrics.clone(), token);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::warn!(error = %e, "metrics listener stopped");
            }
        }));
    }
    let t = &settings.telemetry;
    if !t.otlp_endpoint.is_empty() {
        let shown = mongars_config::redact_url_credentials(&t.otlp_endpoint);
        tracing::info!(endpoint = %shown, "OTLP metrics export started");
        tasks.push(tokio::spawn(mongars_metrics::otlp::run(
            metrics.clone(),
            mongars_metrics::otlp::OtlpTarget {
                endpoint: t.otlp_endpoint.clone(),
                tls: crate::wiring::net::outbound_tls(settings)?,
                encoding: if t.otlp_protocol == "http/json" {
                    mongars_metrics::otlp::Encoding::Json
                } else {
                    mongars_metrics::otlp::Encoding::Protobuf
                },
            },
            Duration::from_secs(t.otlp_interval_secs),
            resource(settings),
        )));
    }
    Ok(tasks)
}

/// The resource every exported metric belongs to: the service, its
/// version, this process (the identity stored on the turns it runs) and the
/// host.
fn resource(settings: &Settings) -> Vec<mongars_metrics::otlp::Attribute> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut list = vec![
        ("service.name", settings.telemetry.service_name.clone()),
        ("service.version", env!("CARGO_PKG_VERSION").to_string()),
        (
            "service.instance.id",
            crate::instance::current().to_string(),
        ),
    ];
    if !host.is_empty() {
        list.push(("host.name", host));
    }
    list.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
