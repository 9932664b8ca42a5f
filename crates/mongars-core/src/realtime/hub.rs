//! The sockets of this process, by user, and delivery of events to them.
//!
//! Each socket has a bounded queue. Delivery never waits: when a socket's
//! queue is full the socket is cut off from further events and told to close
//! (1013), so one slow reader never holds up the chat or anyone else. When a
//! user's access is revoked (account disabled, password changed) every
//! socket of theirs is cut off the same way and told to close (1008).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// Why a socket was cut off by the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cutoff {
    /// The outbound queue was full.
    Overflow,
    /// The user's access was revoked.
    Revoked,
}

/// Tells one socket's session that it is cut off, and why (the first
/// reason given wins).
#[derive(Default)]
struct Signal {
    notify: Notify,
    reason: AtomicU8,
}

const NONE: u8 = 0;
const OVERFLOW: u8 = 1;
const REVOKED: u8 = 2;

impl Signal {
    fn raise(&self, reason: u8) {
        let _ = self
            .reason
            .compare_exchange(NONE, reason, Ordering::AcqRel, Ordering::Acquire);
        self.notify.notify_one();
    }

    async fn wait(&self) -> Cutoff {
        loop {
            match self.reason.load(Ordering::Acquire) {
                OVERFLOW => return Cutoff::Overflow,
                REVOKED => return Cutoff::Revoked,
                _ => self.notify.notified().await,
            }
        }
    }
}

struct Slot {
    id: u64,
    tx: mpsc::Sender<Arc<str>>,
    signal: Arc<Signal>,
}

#[derive(Default)]
pub struct Hub {
    sockets: Mutex<HashMap<i64, Vec<Slot>>>,
    next_id: AtomicU64,
    open: AtomicU64,
    overflows: AtomicU64,
}

/// One socket's side of the hub: its queue and its cut-off signal. Dropping
/// it leaves the hub.
pub struct Subscription {
    hub: Arc<Hub>,
    user_id: i64,
    id: u64,
    /// Frames for this socket, in order.
    pub rx: mpsc::Receiver<Arc<str>>,
    outbox: Outbox,
}

/// The session's own way into its socket's queue (acks, pings), shared with
/// the tasks it starts. A full queue here cuts the socket off too.
#[derive(Clone)]
pub struct Outbox {
    hub: Arc<Hub>,
    tx: mpsc::Sender<Arc<str>>,
    signal: Arc<Signal>,
}

impl Outbox {
    /// Resolves once the hub has cut this socket off, with the reason.
    pub async fn cut_off(&self) -> Cutoff {
        self.signal.wait().await
    }

    /// Cut this socket off as revoked (its account was found revoked).
    pub fn revoke(&self) {
        self.signal.raise(REVOKED);
    }

    /// Whether the socket's access has been revoked.
    pub fn revoked(&self) -> bool {
        self.signal.reason.load(Ordering::Acquire) == REVOKED
    }

    /// Queue a frame; `false` when the queue is full (the socket is then
    /// cut off) or the socket is gone.
    pub fn push(&self, frame: impl Into<Arc<str>>) -> bool {
        self.hub.offer(&self.tx, &self.signal, frame.into())
    }
}

impl Subscription {
    /// Resolves once the hub has cut this socket off.
    pub async fn cut_off(&self) -> Cutoff {
        self.outbox.cut_off().await
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.user_id, self.id);
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Register a socket of `user_id` with a queue of `capacity` frames.
    pub fn subscribe(self: &Arc<Self>, user_id: i64, capacity: usize) -> Subscription {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let signal = Arc::new(Signal::default());
        self.lock().entry(user_id).or_default().push(Slot {
            id,
            tx: tx.clone(),
            signal: signal.clone(),
        });
        self.open.fetch_add(1, Ordering::Relaxed);
        Subscription {
            hub: self.clone(),
            user_id,
            id,
            rx,
            outbox: Outbox {
                hub: self.clone(),
                tx,
                signal,
            },
        }
    }

    /// Sockets of `user_id` in this process.
    pub fn sockets_of(&self, user_id: i64) -> usize {
        self.lock().get(&user_id).map_or(0, Vec::len)
    }

    /// Sockets open in this process.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Sockets cut off for a full queue since start.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// Queue `frame` on every socket of `user_id` here; returns how many took it.
    pub fn deliver(&self, user_id: i64, frame: &str) -> usize {
        let mut sockets = self.lock();
        let Some(slots) = sockets.get_mut(&user_id) else {
            return 0;
        };
        let frame: Arc<str> = Arc::from(frame);
        let mut delivered = 0;
        slots.retain(|slot| {
            let taken = self.offer(&slot.tx, &slot.signal, frame.clone());
            delivered += usize::from(taken);
            taken
        });
        if slots.is_empty() {
            sockets.remove(&user_id);
        }
        delivered
    }

    /// Cut off every socket of `user_id` here, telling each to close as
    /// revoked; returns how many there were. They hear no further events.
    pub fn revoke(&self, user_id: i64) -> usize {
        let Some(slots) = self.lock().remove(&user_id) else {
            return 0;
        };
        for slot in &slots {
            slot.signal.raise(REVOKED);
        }
        slots.len()
    }

    /// Queue `frame` without waiting; on a full queue, count the overflow
    /// and signal the socket to close. `false` when the frame was not taken.
    fn offer(&self, tx: &mpsc::Sender<Arc<str>>, signal: &Signal, frame: Arc<str>) -> bool {
        if signal.reason.load(Ordering::Acquire) != NONE {
            return false;
        }
        match tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflows.fetch_add(1, Ordering::Relaxed);
                signal.raise(OVERFLOW);
                false
            }
        }
    }

    fn remove(&self, user_id: i64, id: u64) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        let mut sockets = self.lock();
        if let Some(slots) = sockets.get_mut(&user_id) {
            slots.retain(|s| s.id != id);
            if slots.is_empty() {
                sockets.remove(&user_id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<Slot>>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_every_socket_of_the_user_and_no_other() {
        let hub = Hub::new();
        let mut a1 = hub.subscribe(1, 4);
        let mut a2 = hub.subscribe(1, 4);
        let mut b = hub.subscribe(2, 4);
        assert_eq!(hub.deliver(1, "hello"), 2);
        assert_eq!(&*a1.rx.recv().await.unwrap(), "hello");
        assert_eq!(&*a2.rx.recv().await.unwrap(), "hello");
        assert!(b.rx.try_recv().is_err());
        assert_eq!(hub.open(), 3);
        drop(a2);
        assert_eq!(hub.sockets_of(1), 1);
        assert_eq!(hub.deliver(3, "nobody"), 0);
    }

    #[tokio::test]
    async fn a_full_queue_cuts_that_socket_off_only() {
        let hub = Hub::new();
        let slow = hub.subscribe(1, 2);
        let mut fast = hub.subscribe(1, 8);
        for i in 0..3 {
            hub.deliver(1, &format!("{i}"));
            fast.rx.recv().await.unwrap();
        }
        tokio::time::timeout(std::time::Duration::from_secs(1), slow.cut_off())
            .await
            .expect("the slow socket is told to close");
        assert_eq!(hub.overflows(), 1);
        assert_eq!(hub.deliver(1, "more"), 1, "only the fast socket remains");
        assert!(!slow.outbox().push("x") || slow.rx.len() <= 2);
    }

    #[tokio::test]
    async fn revoking_cuts_off_every_socket_of_that_user_only() {
        let hub = Hub::new();
        let a1 = hub.subscribe(1, 4);
        let a2 = hub.subscribe(1, 4);
        let mut b = hub.subscribe(2, 4);
        assert_eq!(hub.revoke(1), 2);
        for s in [&a1, &a2] {
            let why = tokio::time::timeout(std::time::Duration::from_secs(1), s.cut_off())
                .await
                .expect("told to close");
            assert_eq!(why, Cutoff::Revoked);
            assert!(s.outbox().revoked());
            assert!(!s.outbox().push("ack"), "nothing more is queued");
        }
        assert_eq!(hub.deliver(1, "late"), 0);
        assert_eq!(hub.deliver(2, "still here"), 1);
        assert_eq!(&*b.rx.recv().await.unwrap(), "still here");
        assert_eq!(hub.revoke(1), 0);
    }
}
