//! The router as operators see it: backend reports, the models view and
//! provisioning.

use super::Router;
use async_trait::async_trait;
use mongars_core::domain::ModelRole;
use mongars_core::ports::{
    BackendReport, ChainEntry, ModelFleet, ModelsView, ProgressSink, ProvisionOutcome,
    ProvisionResult, RoleProvision, RoleView,
};

#[async_trait]
impl ModelFleet for Router {
    async fn backends(&self) -> Vec<BackendReport> {
        let mut reports = Vec::new();
        for b in &self.everyone() {
            let h = b.health().await;
            let breaker = b.breaker.snapshot();
            let stats = b.stats.snapshot();
            let roles = ModelRole::ALL
                .into_iter()
                .filter(|r| {
                    self.chains
                        .get(*r)
                        .backends
                        .iter()
                        .any(|x| std::sync::Arc::ptr_eq(x, b))
                })
                .collect();
            reports.push(BackendReport {
                name: b.name.clone(),
                kind: b.kind.clone(),
                model: b.backend.model().to_string(),
                roles,
                healthy: h.healthy,
                detail: h.detail,
                breaker: breaker.state.as_str().to_string(),
                consecutive_failures: breaker.consecutive_failures,
                retry_in_ms: breaker.retry_in_ms,
                last_error: stats.last_error,
                last_error_at: stats.last_error_at,
                last_latency_ms: stats.last_latency_ms,
                requests: stats.requests,
                failures: stats.failures,
                context_window: b.backend.context_window(),
                active: h.active,
                queued: h.queued,
            });
        }
        reports
    }

    fn models(&self) -> ModelsView {
        let roles = ModelRole::ALL
            .into_iter()
            .map(|role| {
                let chain = self.chains.get(role);
                RoleView {
                    role,
                    backends: chain
                        .backends
                        .iter()
                        .map(|b| ChainEntry {
                            backend: b.name.clone(),
                            kind: b.kind.clone(),
                            model: b.backend.model().to_string(),
                        })
                        .chain(chain.pools.iter().map(|(_, p)| ChainEntry {
                            backend: p.name().to_string(),
                            kind: "peers".to_string(),
                            model: String::new(),
                        }))
                        .collect(),
                    temperature: chain.sampling.temperature,
                    top_p: chain.sampling.top_p,
                    max_tokens: chain.sampling.max_tokens,
                }
            })
            .collect();
        ModelsView {
            adapter: None,
            active_profile: self.profile.clone(),
            roles,
            profiles: self.profiles.clone(),
        }
    }

    async fn provision(
        &self,
        roles: &[ModelRole],
        force: bool,
        progress: ProgressSink,
    ) -> Vec<RoleProvision> {
        let roles: Vec<ModelRole> = if roles.is_empty() {
            ModelRole::ALL.to_vec()
        } else {
            roles.to_vec()
        };
        let mut out = Vec::new();
        for role in roles {
            let mut results = Vec::new();
            for b in &self.chains.get(role).backends {
                let outcome = b.backend.provision(force, progress.clone()).await;
                let (status, error) = match outcome {
                    Ok(ProvisionOutcome::Present) => ("present", None),
                    Ok(ProvisionOutcome::Pulled) => ("pulled", None),
                    Err(e) => ("failed", Some(e.to_string())),
                };
                results.push(ProvisionResult {
                    backend: b.name.clone(),
                    model: b.backend.model().to_string(),
                    status: status.to_string(),
                    error,
                });
            }
            out.push(RoleProvision {
                role,
                ok: results.iter().all(|r| r.status != "failed"),
                results,
            });
        }
        out
    }
}
