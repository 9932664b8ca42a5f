//! Password hashing with argon2id, off the async runtime.
//!
//! Hashes run on tokio's blocking pool behind a semaphore sized to the CPU
//! count, so a burst of logins queues instead of starving every other request
//! or allocating argon2's memory for all of them at once. Unknown users are
//! checked against a dummy hash made with the same parameters, so they cost
//! the same time as a wrong password.

use crate::domain::Password;
use crate::error::CoreError;
use argon2::password_hash::SaltString;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

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

pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy_hash: String,
}

impl PasswordHasher {
    /// Build a hasher; `max_concurrent` 0 means one hash per CPU core.
    pub async fn new(cfg: HashParams, max_concurrent: usize) -> Result<Self, CoreError> {
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.parallelism, None)
            .map_err(|e| CoreError::Internal(format!("argon2 parameters: {e}")))?;
        let slots = if max_concurrent == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            max_concurrent
        };
        let mut dummy = [0u8; 24];
        getrandom::fill(&mut dummy).map_err(|e| CoreError::Internal(format!("rng: {e}")))?;
        let dummy_password = Password::for_login(&hex(&dummy))?;
        let p = params.clone();
        let dummy_hash = run_blocking(move || hash_with(&p, &dummy_password)).await??;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(slots)),
            dummy_hash,
        })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, CoreError> {
        let _permit = self.acquire().await?;
        let params = self.params.clone();
        let password = password.clone();
        run_blocking(move || hash_with(&params, &password)).await?
    }

    /// Check `password` against `stored`; with `None` (unknown user) the dummy
    /// hash is checked instead and the answer is always "no match".
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<Verification, CoreError> {
        let _permit = self.acquire().await?;
        let known = stored.is_some();
        let phc = stored.unwrap_or(&self.dummy_hash).to_string();
        let params = self.params.clone();
        let password = password.clone();
        let v = run_blocking(move || verify_with(&params, &password, &phc)).await?;
        Ok(Verification {
            matches: known && v.matches,
            needs_rehash: known && v.needs_rehash,
        })
    }

    async fn acquire(&self) -> Result<tokio::sync::SemaphorePermit<'_>, CoreError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| CoreError::Internal("hasher closed".into()))
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CoreError::Internal(format!("hashing task failed: {e}")))
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &Password) -> Result<String, CoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| CoreError::Internal(format!("rng: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| CoreError::Internal(e.to_string()))?;
    argon(params)
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("argon2: {e}")))
}

fn verify_with(params: &Params, password: &Password, phc: &str) -> Verification {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verification {
            matches: false,
            needs_rehash: false,
        };
    };
    let matches = argon(params)
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok();
    let same_params = parsed.algorithm == Algorithm::Argon2id.ident()
        && Params::try_from(&parsed).is_ok_and(|p| {
            p.m_cost() == params.m_cost()
                && p.t_cost() == params.t_cost()
                && p.p_cost() == params.p_cost()
        });
    Verification {
        matches,
        needs_rehash: matches && !same_params,
    }
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
