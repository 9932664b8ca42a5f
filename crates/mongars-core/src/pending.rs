//! Work a request leaves behind (trimming working memory, learning a
//! style), counted so that a stopping server can wait for it before it
//! closes the database, instead of cutting it off half-way.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Pending {
    running: AtomicUsize,
    idle: Notify,
}

impl Pending {
    /// Run `work` on the runtime, counted until it ends.
    pub fn spawn(self: &std::sync::Arc<Self>, work: impl Future<Output = ()> + Send + 'static) {
        self.running.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            work.await;
            if this.running.fetch_sub(1, Ordering::SeqCst) == 1 {
                this.idle.notify_waiters();
            }
        });
    }

    /// Resolves once nothing spawned here is running.
    pub async fn settled(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn settles_once_every_task_has_ended() {
        let pending = Arc::new(Pending::default());
        pending.settled().await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let done = Arc::new(AtomicUsize::new(0));
        let d = done.clone();
        pending.spawn(async move {
            let _ = rx.await;
            d.fetch_add(1, Ordering::SeqCst);
        });
        let waiter = {
            let p = pending.clone();
            tokio::spawn(async move { p.settled().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tx.send(()).unwrap();
        waiter.await.unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
