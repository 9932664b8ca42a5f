//! What a node knows of one peer now: its last load report and when it came.
//! Up while reports arrive within the staleness limit, on the injected clock.

use chrono::{DateTime, Utc};
use mongars_core::domain::{NodeLoad, PeerState};
use mongars_core::ports::{BackendHealth, Clock};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct PeerStatus {
    last: Mutex<Option<(DateTime<Utc>, NodeLoad)>>,
    stale_after: Duration,
    clock: Arc<dyn Clock>,
}

impl PeerStatus {
    pub fn new(stale_after: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            last: Mutex::new(None),
            stale_after,
            clock,
        }
    }

    /// A report from (or about) the peer arrived now.
    pub fn record(&self, load: NodeLoad) {
        *self.last.lock().expect("peer status") = Some((self.clock.now(), load));
    }

    pub fn last(&self) -> Option<(DateTime<Utc>, NodeLoad)> {
        self.last.lock().expect("peer status").clone()
    }

    pub fn state(&self) -> PeerState {
        match self.last() {
            Some((at, _)) if self.fresh(at) => PeerState::Up,
            _ => PeerState::Down,
        }
    }

    fn fresh(&self, at: DateTime<Utc>) -> bool {
        let age = self.clock.now() - at;
        age.to_std().map_or(true, |age| age <= self.stale_after)
    }

    /// The peer's load when it is up.
    pub fn live_load(&self) -> Option<NodeLoad> {
        self.last()
            .filter(|(at, _)| self.fresh(*at))
            .map(|(_, l)| l)
    }

    pub fn health(&self) -> BackendHealth {
        match (self.state(), self.last()) {
            (PeerState::Up, Some((_, load))) => BackendHealth {
                healthy: true,
                detail: format!("up, load factor {:.2}", load.load_factor),
                active: load.active_workers as usize,
                queued: load.queue_depth as usize,
            },
            (_, last) => BackendHealth {
                healthy: false,
                detail: match last {
                    Some((at, _)) => format!("down: no load report since {}", at.to_rfc3339()),
                    None => "down: no load report yet".into(),
                },
                active: 0,
                queued: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongars_core::ports::ManualClock;

    fn load() -> NodeLoad {
        NodeLoad {
            scheduler_id: "x".into(),
            queue_depth: 0,
            active_workers: 1,
            concurrency: 1,
            load_factor: 1.0,
            tokens_per_second: 0.0,
            models: vec![],
        }
    }

    #[test]
    fn a_peer_is_down_once_its_reports_are_stale() {
        let clock = Arc::new(ManualClock::new());
        clock.freeze();
        let s = PeerStatus::new(Duration::from_secs(10), clock.clone());
        assert_eq!(s.state(), PeerState::Down);
        s.record(load());
        assert_eq!(s.state(), PeerState::Up);
        assert!(s.health().healthy);
        clock.advance(Duration::from_secs(10));
        assert_eq!(s.state(), PeerState::Up);
        clock.advance(Duration::from_secs(1));
        assert_eq!(s.state(), PeerState::Down);
        assert!(s.live_load().is_none());
        assert!(s.health().detail.starts_with("down"));
        s.record(load());
        assert_eq!(s.state(), PeerState::Up);
    }
}
