//! Metrics of peers: hand-offs, generations served for other nodes, load
//! reports and refused handshakes.

use super::{counter, reg};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

#[derive(Clone)]
pub struct PeerMetrics {
    /// Generations this node handed to a peer, by peer URL.
    pub handoffs: IntCounterVec,
    /// Generations this node ran for peers, by outcome: `ok`, `failed`.
    pub served: IntCounterVec,
    /// 1 while the peer reports its load within the staleness limit.
    pub up: IntGaugeVec,
    /// Load reports, by direction (`sent`, `received`) and outcome.
    pub reports: IntCounterVec,
    /// TLS handshakes on the peer listener, by outcome: `ok`, `refused`.
    pub handshakes: IntCounterVec,
}

impl PeerMetrics {
    pub(crate) fn new(r: &Registry) -> Self {
        Self {
            handoffs: counter(
                r,
                "mongars_peer_handoffs_total",
                "Generations handed to a peer, by peer.",
                &["peer"],
            ),
            served: counter(
                r,
                "mongars_peer_served_total",
                "Generations run for peers, by outcome.",
                &["outcome"],
            ),
            up: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "mongars_peer_up",
                        "1 while the peer reports its load in time, 0 when it is down.",
                    ),
                    &["peer"],
                )
                .expect("valid gauge"),
            ),
            reports: counter(
                r,
                "mongars_peer_load_reports_total",
                "Load reports exchanged with peers, by direction and outcome.",
                &["direction", "outcome"],
            ),
            handshakes: counter(
                r,
                "mongars_peer_handshakes_total",
                "TLS handshakes on the peer listener, by outcome.",
                &["outcome"],
            ),
        }
    }
}
