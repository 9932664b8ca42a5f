//! The adapter registry: adapters made by training runs, approved by an
//! operator, activated on the embedded engine without a restart and rolled
//! back the same way. Nothing activates itself: an adapter serves only
//! after an operator approved it and asked for it.

use super::model::{Adapter, AdapterStatus};
use crate::error::CoreError;
use crate::ports::{AdapterRepository, Clock};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The engine adapters are applied to.
#[async_trait]
pub trait AdapterHost: Send + Sync {
    /// Serve new replies with the adapter at `path` registered as `id`, or
    /// with the bare model for `None`; replies in flight are not disturbed.
    /// Returns how long the switch took.
    async fn switch(&self, adapter: Option<(&str, &Path)>) -> Result<Duration, CoreError>;
    /// The id of the adapter new replies get, if any.
    fn active(&self) -> Option<String>;
}

/// The outcome of an activation or rollback.
#[derive(Debug, Clone, PartialEq)]
pub struct Switched {
    /// The adapter now active (`None`: the bare model).
    pub active: Option<Adapter>,
    /// How long the engine took to switch (zero when no engine runs here).
    pub took: Duration,
}

pub struct AdapterRegistry {
    repo: Arc<dyn AdapterRepository>,
    /// Where adapter files are kept.
    dir: PathBuf,
    /// `None` where no embedded engine runs (the registry still works; the
    /// replicas that run one pick the change up).
    host: Option<Arc<dyn AdapterHost>>,
    clock: Arc<dyn Clock>,
    /// One activation, rollback or reconciliation at a time.
    lock: tokio::sync::Mutex<()>,
}

/// The SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}

fn conflict(code: &'static str, message: impl Into<String>) -> CoreError {
    CoreError::Conflict {
        code,
        message: message.into(),
    }
}

/// What a new adapter is registered with.
#[derive(Debug, Clone)]
pub struct NewAdapter {
    /// The GGUF LoRA file, copied into the registry's folder.
    pub source: PathBuf,
    pub base_model_sha256: String,
    pub dataset_hash: String,
    pub run_id: Option<String>,
    pub metrics: serde_json::Value,
}

impl AdapterRegistry {
    pub fn new(
        repo: Arc<dyn AdapterRepository>,
        dir: PathBuf,
        host: Option<Arc<dyn AdapterHost>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            repo,
            dir,
            host,
            clock,
            lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every adapter, newest first.
    pub async fn list(&self) -> Result<Vec<Adapter>, CoreError> {
        Ok(self.repo.list().await?)
    }

    pub async fn get(&self, id: &str) -> Result<Adapter, CoreError> {
        self.repo
            .get(id)
            .await?
            .ok_or(CoreError::NotFound("Adapter"))
    }

    /// The adapter active in the registry, and the one this node serves.
    pub async fn active(&self) -> Result<(Option<Adapter>, Option<String>), CoreError> {
        let stored = self.repo.active().await?;
        Ok((stored, self.host.as_ref().and_then(|h| h.active())))
    }

    /// The adapter this node's engine serves with, if any.
    pub fn serving(&self) -> Option<String> {
        self.host.as_ref().and_then(|h| h.active())
    }

    /// Register a candidate: its file is copied into the registry's folder.
    pub async fn register(&self, new: NewAdapter) -> Result<Adapter, CoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let file = format!("{id}.gguf");
        let dest = self.dir.join(&file);
        let (source, dir) = (new.source.clone(), self.dir.clone());
        let sha256 = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dest.with_extension("part");
            std::fs::copy(&source, &tmp)?;
            std::fs::rename(&tmp, &dest)?;
            sha256_file(&dest)
        })
        .await
        .map_err(|e| CoreError::Internal(format!("adapter copy: {e}")))?
        .map_err(|e| CoreError::Internal(format!("adapter file: {e}")))?;
        let adapter = Adapter {
            id,
            version: 0,
            status: AdapterStatus::Candidate,
            file,
            sha256,
            base_model_sha256: new.base_model_sha256,
            dataset_hash: new.dataset_hash,
            run_id: new.run_id,
            metrics: new.metrics,
            created_at: self.clock.now(),
            approved_at: None,
            activated_at: None,
        };
        Ok(self.repo.insert(&adapter).await?)
    }

    pub async fn approve(&self, id: &str, by: i64) -> Result<Adapter, CoreError> {
        let a = self.get(id).await?;
        if a.status.approved() {
            return Ok(a);
        }
        if !self.repo.approve(id, by, self.clock.now()).await? {
            return Err(conflict(
                "adapter.not_candidate",
                format!(
                    "Adapter {id} is {}; only candidates can be approved",
                    a.status.as_str()
                ),
            ));
        }
        self.get(id).await
    }

    pub async fn reject(&self, id: &str) -> Result<Adapter, CoreError> {
        self.get(id).await?;
        if !self.repo.reject(id).await? {
            return Err(conflict(
                "adapter.active",
                "The active adapter cannot be rejected; roll it back first",
            ));
        }
        self.get(id).await
    }

    /// The file of `a`, checked against its recorded hash.
    async fn file(&self, a: &Adapter) -> Result<PathBuf, CoreError> {
        let path = self.dir.join(&a.file);
        let p = path.clone();
        let sha = tokio::task::spawn_blocking(move || sha256_file(&p))
            .await
            .map_err(|e| CoreError::Internal(format!("adapter hash: {e}")))?
            .map_err(|e| {
                conflict(
                    "adapter.file_missing",
                    format!("The file of adapter {} cannot be read: {e}", a.id),
                )
            })?;
        if sha != a.sha256 {
            return Err(conflict(
                "adapter.file_changed",
                format!(
                    "The file of adapter {} does not match its recorded hash",
                    a.id
                ),
            ));
        }
        Ok(path)
    }

    /// Put this node's engine on `target`, if it runs one.
    async fn apply(&self, target: Option<&Adapter>) -> Result<Duration, CoreError> {
        let Some(host) = &self.host else {
            return Ok(Duration::ZERO);
        };
        match target {
            Some(a) => {
                let path = self.file(a).await?;
                host.switch(Some((&a.id, &path))).await
            }
            None => host.switch(None).await,
        }
    }

    /// Serve an approved adapter from now on.
    pub async fn activate(&self, id: &str, by: i64) -> Result<Switched, CoreError> {
        let _one = self.lock.lock().await;
        let a = self.get(id).await?;
        if !a.status.approved() {
            return Err(conflict(
                "adapter.not_approved",
                format!(
                    "Adapter {id} is {}; approve it before activating it",
                    a.status.as_str()
                ),
            ));
        }
        let took = self.apply(Some(&a)).await?;
        if !self.repo.activate(id, by, self.clock.now()).await? {
            return Err(conflict(
                "adapter.not_approved",
                "The adapter changed meanwhile",
            ));
        }
        Ok(Switched {
            active: Some(self.get(id).await?),
            took,
        })
    }

    /// Return to the adapter active before the current one (or the bare
    /// model).
    pub async fn rollback(&self) -> Result<Switched, CoreError> {
        let _one = self.lock.lock().await;
        let target =
            self.repo.rollback(self.clock.now()).await?.ok_or_else(|| {
                conflict("adapter.nothing_to_roll_back", "No adapter was activated")
            })?;
        let took = self.apply(target.as_ref()).await?;
        Ok(Switched {
            active: target,
            took,
        })
    }

    /// Make this node serve what the registry says is active (at start, and
    /// now and then so that every replica follows an activation made on
    /// another). Whether anything changed.
    pub async fn reconcile(&self) -> Result<bool, CoreError> {
        let Some(host) = &self.host else {
            return Ok(false);
        };
        let _one = self.lock.lock().await;
        let want = self.repo.active().await?;
        if want.as_ref().map(|a| a.id.clone()) == host.active() {
            return Ok(false);
        }
        self.apply(want.as_ref()).await?;
        Ok(true)
    }
}
