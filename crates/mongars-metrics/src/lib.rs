//! Every metric monGARS records, in one registry per application.
//!
//! Names carry the `mongars_` prefix and only bounded labels: matched route
//! templates (never raw paths), backend names from the settings, error kinds
//! from a fixed list. [`Metrics::render`] gives the Prometheus text format for
//! `GET /metrics`; [`otlp`] pushes the same values to an OpenTelemetry
//! collector under dotted names (`llm.ray.requests`, ...).
//!
//! One registry per [`Metrics`] value (not a process-wide global), so that
//! several applications in one test process do not mix their counts.

pub mod otlp;
mod peers;
mod process;
mod training;
pub use peers::PeerMetrics;
pub use process::{
    ProcessFigures, heap_figures, limit_heap_arenas, pin_heap_thresholds, release_free_heap,
};
pub use training::TrainingMetrics;

use prometheus::{HistogramOpts, HistogramVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};
pub use prometheus::{IntCounter, IntCounterVec};
use std::time::Duration;

/// Latency buckets in seconds, from 1 ms to 2 minutes.
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Numeric value of a breaker state in `mongars_llm_breaker_state`.
pub const BREAKER_CLOSED: i64 = 0;
pub const BREAKER_HALF_OPEN: i64 = 1;
pub const BREAKER_OPEN: i64 = 2;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http: HttpMetrics,
    pub llm: LlmMetrics,
    pub ray: RayMetrics,
    pub cache: CacheMetrics,
    pub ws: WsMetrics,
    pub training: TrainingMetrics,
    pub peers: PeerMetrics,
}

#[derive(Clone)]
pub struct WsMetrics {
    /// Sockets open in this process.
    pub open: IntGauge,
    /// reason: `client`, `slow_consumer`, `no_pong`, `error`, `shutdown`
    pub closed: IntCounterVec,
    /// reason: `origin`, `ticket`, `disabled`, `too_many`
    pub refused: IntCounterVec,
    /// Frames written to clients.
    pub frames_sent: IntCounter,
}

#[derive(Clone)]
pub struct HttpMetrics {
    /// route, method, status
    pub requests: IntCounterVec,
    /// route, method
    pub duration: HistogramVec,
    /// Connections being served now.
    pub connections: IntGauge,
    /// Connections ended by the server, by reason: `over_cap` (answered
    /// 503 at once), `header_timeout`, `idle`.
    pub connections_closed: IntCounterVec,
}

#[derive(Clone)]
pub struct LlmMetrics {
    /// backend, role, outcome (`ok` or an error kind)
    pub requests: IntCounterVec,
    /// backend, kind (`prompt` or `completion`)
    pub tokens: IntCounterVec,
    /// backend
    pub time_to_first_token: HistogramVec,
    /// backend
    pub duration: HistogramVec,
    /// backend, kind
    pub errors: IntCounterVec,
    /// backend
    pub retries: IntCounterVec,
    /// role, from (the backend that was left)
    pub failovers: IntCounterVec,
    /// backend: 0 closed, 1 half-open, 2 open
    pub breaker_state: IntGaugeVec,
    /// backend, to (`closed`, `half_open`, `open`)
    pub breaker_transitions: IntCounterVec,
}

#[derive(Clone)]
pub struct RayMetrics {
    pub requests: IntCounter,
    /// reason: `scaling`, `server_error`, `transport`, `rejected`, `timeout`, `malformed`
    pub failures: IntCounterVec,
    pub scaling_events: IntCounter,
    pub latency: HistogramVec,
}

#[derive(Clone)]
pub struct CacheMetrics {
    /// result: `hit` or `miss`
    pub requests: IntCounterVec,
    pub entries: IntGauge,
}

/// Registration cannot fail for these fixed, distinct names; a failure is a
/// bug caught by the first test that builds metrics.
fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
    )
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
    reg(r, HistogramVec::new(opts, labels).expect("valid histogram"))
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        r.register(Box::new(process::ProcessCollector::new()))
            .expect("process metric names are unique and valid");
        let http = HttpMetrics {
            requests: counter(
                &r,
                "mongars_http_requests_total",
                "HTTP requests by matched route, method and status.",
                &["route", "method", "status"],
            ),
            duration: histogram(
                &r,
                "mongars_http_request_duration_seconds",
                "HTTP request duration by matched route and method.",
                &["route", "method"],
            ),
            connections: reg(
                &r,
                IntGauge::new("mongars_http_connections", "HTTP connections being served.")
                    .expect("valid gauge"),
            ),
            connections_closed: counter(
                &r,
                "mongars_http_connections_closed_total",
                "Connections the server ended itself, by reason.",
                &["reason"],
            ),
        };
        let llm = LlmMetrics {
            requests: counter(
                &r,
                "mongars_llm_requests_total",
                "Generation requests per backend and role, by outcome.",
                &["backend", "role", "outcome"],
            ),
            tokens: counter(
                &r,
                "mongars_llm_tokens_total",
                "Tokens processed per backend: prompt or completion.",
                &["backend", "kind"],
            ),
            time_to_first_token: histogram(
                &r,
                "mongars_llm_time_to_first_token_seconds",
                "Time from request to the first generated token.",
                &["backend"],
            ),
            duration: histogram(
                &r,
                "mongars_llm_request_duration_seconds",
                "Time from request to the end of the reply.",
                &["backend"],
            ),
            errors: counter(
                &r,
                "mongars_llm_errors_total",
                "Generation failures per backend, by kind.",
                &["backend", "kind"],
            ),
            retries: counter(
                &r,
                "mongars_llm_retries_total",
                "Retries of a request on the same backend.",
                &["backend"],
            ),
            failovers: counter(
                &r,
                "mongars_llm_failovers_total",
                "Requests moved on to the next backend of their role.",
                &["role", "from"],
            ),
            breaker_state: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "mongars_llm_breaker_state",
                        "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open.",
                    ),
                    &["backend"],
                )
                .expect("valid gauge"),
            ),
            breaker_transitions: counter(
                &r,
                "mongars_llm_breaker_transitions_total",
                "Circuit breaker state changes per backend, by new state.",
                &["backend", "to"],
            ),
        };
        let ray = RayMetrics {
            requests: reg(
                &r,
                IntCounter::new(
                    "mongars_llm_ray_requests_total",
                    "HTTP requests sent to Ray Serve endpoints.",
                )
                .expect("valid counter"),
            ),
            failures: counter(
                &r,
                "mongars_llm_ray_failures_total",
                "Failed Ray Serve requests, by reason.",
                &["reason"],
            ),
            scaling_events: reg(
                &r,
                IntCounter::new(
                    "mongars_llm_ray_scaling_events_total",
                    "Ray Serve answers meaning the deployment is scaling (503, 409).",
                )
                .expect("valid counter"),
            ),
            latency: histogram(
                &r,
                "mongars_llm_ray_latency_seconds",
                "Latency of Ray Serve requests until the answer's headers.",
                &["endpoint"],
            ),
        };
        let cache = CacheMetrics {
            requests: counter(
                &r,
                "mongars_llm_cache_requests_total",
                "Response cache lookups, by result.",
                &["result"],
            ),
            entries: reg(
                &r,
                IntGauge::new("mongars_llm_cache_entries", "Responses held in the cache.")
                    .expect("valid gauge"),
            ),
        };
        let ws = WsMetrics {
            open: reg(
                &r,
                IntGauge::new("mongars_ws_connections", "WebSocket sessions open.")
                    .expect("valid gauge"),
            ),
            closed: counter(
                &r,
                "mongars_ws_closed_total",
                "WebSocket sessions ended, by reason.",
                &["reason"],
            ),
            refused: counter(
                &r,
                "mongars_ws_refused_total",
                "WebSocket handshakes refused, by reason.",
                &["reason"],
            ),
            frames_sent: reg(
                &r,
                IntCounter::new(
                    "mongars_ws_frames_sent_total",
                    "Frames written to WebSocket clients.",
                )
                .expect("valid counter"),
            ),
        };
        let training = TrainingMetrics::new(&r);
        let peers = PeerMetrics::new(&r);
        Self {
            registry: r,
            http,
            llm,
            ray,
            cache,
            ws,
            training,
            peers,
        }
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# metrics could not be encoded: {e}\n"))
    }

    /// Register a gauge whose value `sample` gives at each scrape or push
    /// (figures another part owns, such as SQLite's heap). An invalid or
    /// taken name is refused.
    pub fn sampled(
        &self,
        name: &str,
        help: &str,
        sample: impl Fn() -> f64 + Send + 'static,
    ) -> Result<(), String> {
        self.registry
            .register(Box::new(process::Sampled::new(
                name,
                help,
                Box::new(sample),
            )?))
            .map_err(|e| e.to_string())
    }

    pub(crate) fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }

    /// Record one finished HTTP request.
    pub fn observe_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.http
            .requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.http
            .duration
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_bounded_labels() {
        let m = Metrics::new();
        m.observe_http("/api/v1/users/{id}", "GET", 200, Duration::from_millis(3));
        m.ray.requests.inc();
        m.ray.scaling_events.inc();
        m.llm
            .breaker_state
            .with_label_values(&["ollama"])
            .set(BREAKER_OPEN);
        let text = m.render();
        assert!(text.contains(
            "mongars_http_requests_total{method=\"GET\",route=\"/api/v1/users/{id}\",status=\"200\"} 1"
        ));
        assert!(text.contains("mongars_llm_ray_requests_total 1"));
        assert!(text.contains("mongars_llm_ray_scaling_events_total 1"));
        assert!(text.contains("mongars_llm_breaker_state{backend=\"ollama\"} 2"));
        assert!(text.contains("# TYPE mongars_http_request_duration_seconds histogram"));
    }

    #[test]
    fn sampled_gauges_are_read_at_each_render() {
        let m = Metrics::new();
        let value = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(7));
        let read = value.clone();
        m.sampled(
            "mongars_test_sampled_bytes",
            "A sampled figure.",
            move || read.load(std::sync::atomic::Ordering::SeqCst) as f64,
        )
        .expect("registered");
        assert!(m.render().contains("mongars_test_sampled_bytes 7"));
        value.store(9, std::sync::atomic::Ordering::SeqCst);
        assert!(m.render().contains("mongars_test_sampled_bytes 9"));
        assert!(
            m.sampled("mongars_test_sampled_bytes", "Again.", || 0.0)
                .is_err(),
            "a taken name is refused"
        );
        assert!(m.sampled("not a name", "Bad.", || 0.0).is_err());
        if cfg!(target_os = "linux") {
            let text = m.render();
            for name in [
                "process_resident_memory_bytes ",
                "process_open_fds ",
                "process_cpu_seconds_total ",
                "mongars_process_resident_bytes{kind=\"anon\"} ",
            ] {
                assert!(text.contains(name), "{name} missing");
            }
        }
    }

    #[test]
    fn registries_are_independent() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.ray.requests.inc();
        assert!(b.render().contains("mongars_llm_ray_requests_total 0"));
    }
}
