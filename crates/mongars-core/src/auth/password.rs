//! Password hashing with argon2id on a small pool of dedicated threads.
//!
//! The pool has one thread per allowed concurrent hash (default: one per CPU
//! core), so a burst of logins queues instead of starving the async runtime,
//! and memory stays bounded: each thread keeps one argon2 work buffer and
//! reuses it for every verification (the login hot path), instead of
//! allocating 19 MiB per hash on whichever blocking thread is free, which
//! grows the allocator's per-thread arenas without limit. Unknown users are
//! checked against a dummy hash made with the same parameters, so they cost
//! the same time as a wrong password.

use crate::domain::Password;
use crate::error::CoreError;
use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, Version};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash used other parameters than today's: store a new one.
    pub needs_rehash: bool,
}

const NO_MATCH: Verification = Verification {
    matches: false,
    needs_rehash: false,
};

enum Job {
    Hash(Password, oneshot::Sender<Result<String, CoreError>>),
    Verify(Password, String, oneshot::Sender<Verification>),
}

pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    dummy_hash: String,
}

impl PasswordHasher {
    /// Start the pool; `threads` 0 means one per CPU core.
    pub async fn new(cfg: HashParams, threads: usize) -> Result<Self, CoreError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| CoreError::Internal(format!("argon2 parameters: {e}")))?;
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let mut worker = Worker::new(params.clone());
            std::thread::Builder::new()
                .name(format!("mongars-hash-{i}"))
                .spawn(move || worker.run(&rx))
                .map_err(|e| CoreError::Internal(format!("cannot start hashing thread: {e}")))?;
        }
        let mut hasher = Self {
            jobs: tx,
            dummy_hash: String::new(),
        };
        let mut noise = [0u8; 24];
        getrandom::fill(&mut noise).map_err(|e| CoreError::Internal(format!("rng: {e}")))?;
        hasher.dummy_hash = hasher.hash(&Password::for_login(&hex(&noise))?).await?;
        Ok(hasher)
    }

    pub async fn hash(&self, password: &Password) -> Result<String, CoreError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Hash(password.clone(), tx))?;
        rx.await.map_err(|_| gone())?
    }

    /// Check `password` against `stored`; with `None` (unknown user) the dummy
    /// hash is checked instead and the answer is always "no match".
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, CoreError> {
        let known = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy_hash).to_string();
        let (tx, rx) = oneshot::channel();
        self.submit(Job::Verify(password.clone(), phc, tx))?;
        let v = rx.await.map_err(|_| gone())?;
        Ok(if known { v } else { NO_MATCH })
    }

    fn submit(&self, job: Job) -> Result<(), CoreError> {
        self.jobs.send(job).map_err(|_| gone())
    }
}

fn gone() -> CoreError {
    CoreError::Internal("password hashing threads stopped".into())
}

/// One hashing thread and its reusable argon2 memory.
struct Worker {
    params: Params,
    blocks: Vec<Block>,
}

impl Worker {
    fn new(params: Params) -> Self {
        Self {
            params,
            blocks: Vec::new(),
        }
    }

    fn run(&mut self, jobs: &Mutex<mpsc::Receiver<Job>>) {
        loop {
            // Hold the lock only to take one job.
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            match job {
                Ok(Job::Hash(password, reply)) => {
                    let _ = reply.send(self.hash(&password));
                }
                Ok(Job::Verify(password, phc, reply)) => {
                    let _ = reply.send(self.verify(&password, &phc));
                }
                Err(_) => return, // the hasher was dropped
            }
        }
    }

    fn hash(&self, password: &Password) -> Result<String, CoreError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| CoreError::Internal(format!("rng: {e}")))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| CoreError::Internal(e.to_string()))?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password(password.expose().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Internal(format!("argon2: {e}")))
    }

    fn verify(&mut self, password: &Password, phc: &str) -> Verification {
        let Some(stored) = StoredHash::parse(phc) else {
            return NO_MATCH;
        };
        let mut out = [0u8; 64];
        let out = &mut out[..stored.expected.len()];
        let argon = Argon2::new(stored.algorithm, stored.version, stored.params.clone());
        let needed = stored.params.block_count();
        let computed = if needed == self.params.block_count() {
            if self.blocks.len() != needed {
                self.blocks = vec![Block::default(); needed];
            }
            argon.hash_password_into_with_memory(
                password.expose().as_bytes(),
                &stored.salt,
                out,
                &mut self.blocks,
            )
        } else {
            // A hash made with other parameters: a one-off buffer.
            argon.hash_password_into(password.expose().as_bytes(), &stored.salt, out)
        };
        if computed.is_err() {
            return NO_MATCH;
        }
        let matches = constant_time_eq(out, &stored.expected);
        let current = stored.algorithm == Algorithm::Argon2id
            && stored.version == Version::V0x13
            && stored.params.m_cost() == self.params.m_cost()
            && stored.params.t_cost() == self.params.t_cost()
            && stored.params.p_cost() == self.params.p_cost();
        Verification {
            matches,
            needs_rehash: matches && !current,
        }
    }
}

/// The parts of a PHC string needed to recompute it.
struct StoredHash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl StoredHash {
    fn parse(phc: &str) -> Option<Self> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed
            .version
            .map_or(Some(Version::V0x13), |v| Version::try_from(v).ok())?;
        let params = Params::try_from(&parsed).ok()?;
        let mut salt_buf = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt_buf).ok()?.to_vec();
        let expected = parsed.hash?.as_bytes().to_vec();
        (expected.len() <= 64).then_some(Self {
            algorithm,
            version,
            params,
            salt,
            expected,
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: HashParams = HashParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(FAST, 0).await.unwrap();
        let pw = Password::for_login("correct horse").unwrap();
        let stored = h.hash(&pw).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!stored.contains("correct horse"));
        let ok = h.verify(&pw, Some(&stored)).await.unwrap();
        assert_eq!(
            ok,
            Verification {
                matches: true,
                needs_rehash: false
            }
        );
        let wrong = Password::for_login("wrong horse").unwrap();
        assert!(!h.verify(&wrong, Some(&stored)).await.unwrap().matches);
        assert!(!h.verify(&pw, None).await.unwrap().matches);
        assert!(!h.verify(&pw, Some("not a hash")).await.unwrap().matches);
    }

    #[tokio::test]
    async fn changed_parameters_ask_for_rehash() {
        let old = PasswordHasher::new(FAST, 1).await.unwrap();
        let pw = Password::for_login("correct horse").unwrap();
        let stored = old.hash(&pw).await.unwrap();
        let new = PasswordHasher::new(
            HashParams {
                memory_kib: 128,
                ..FAST
            },
            1,
        )
        .await
        .unwrap();
        let v = new.verify(&pw, Some(&stored)).await.unwrap();
        assert_eq!(
            v,
            Verification {
                matches: true,
                needs_rehash: true
            }
        );
    }
}
