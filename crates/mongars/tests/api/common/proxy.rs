//! A TCP proxy a test can cut: passing, blackholed (a network partition:
//! nothing moves, nothing closes), down (connections reset, new ones
//! closed, as when the process behind it dies), and two ways to attack the
//! client's bytes: recorded (to replay them later) or with one byte flipped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Blackhole,
    Down,
    /// Flip the byte at this offset of what the client sends.
    FlipAt(usize),
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    /// What the client of the latest connection sent.
    recorded: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Pass);
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let rec = recorded.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let watcher = watcher.clone();
                if *watcher.borrow() == Mode::Down {
                    drop(client);
                    continue;
                }
                rec.lock().unwrap().clear();
                tokio::spawn(relay(client, upstream, watcher, rec.clone()));
            }
        });
        Self {
            addr,
            mode,
            recorded,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn recorded(&self) -> Vec<u8> {
        self.recorded.lock().unwrap().clone()
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mode: watch::Receiver<Mode>,
    recorded: Arc<Mutex<Vec<u8>>>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = {
        let mut mode = mode.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut offset = 0usize;
            loop {
                let n = tokio::select! {
                    r = cr.read(&mut buf), if *mode.borrow() == Mode::Pass || matches!(*mode.borrow(), Mode::FlipAt(_)) => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    },
                    changed = mode.changed() => {
                        if changed.is_err() || *mode.borrow() == Mode::Down { return; }
                        continue;
                    }
                };
                let chunk = &mut buf[..n];
                if let Mode::FlipAt(at) = *mode.borrow()
                    && (offset..offset + n).contains(&at)
                {
                    chunk[at - offset] ^= 0x01;
                }
                recorded.lock().unwrap().extend_from_slice(chunk);
                offset += n;
                if sw.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }
    };
    let down = {
        let mut mode = mode.clone();
        async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = tokio::select! {
                    r = sr.read(&mut buf), if *mode.borrow() != Mode::Blackhole => match r {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    },
                    changed = mode.changed() => {
                        if changed.is_err() || *mode.borrow() == Mode::Down { return; }
                        continue;
                    }
                };
                if cw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    };
    // Either direction ending (or the proxy going down) closes both.
    tokio::select! {
        _ = up => {},
        _ = down => {},
    }
}
