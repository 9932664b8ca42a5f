//! Secrets from HashiCorp Vault at start-up: log in (a token file, or
//! Kubernetes auth with the pod's ServiceAccount token), read one KV v2
//! secret, and apply its fields as settings (`auth.jwt_secret`,
//! `database.url`...). Vault that cannot be reached is tried again with
//! doubling waits; a missing secret or a refused login stops start-up with
//! the path in the message. Values are never logged or shown.

use anyhow::{Context, bail};
use mongars_config::{Settings, VaultSettings};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Read the configured secret and apply it; the names of the settings it
/// set (none when Vault is not configured).
pub async fn apply(settings: &mut Settings) -> anyhow::Result<Vec<String>> {
    let v = settings.vault.clone();
    if v.address.is_empty() {
        return Ok(Vec::new());
    }
    let tls = crate::wiring::net::outbound_tls(settings)?;
    let client = tls
        .client_builder()
        .timeout(Duration::from_millis(v.timeout_ms))
        .build()?;
    let vault = Vault { v: &v, client };
    let token = vault.token().await?;
    let where_ = format!(
        "{}/data/{}",
        v.mount.trim_matches('/'),
        v.path.trim_matches('/')
    );
    let values = vault.read(&token, &where_).await?;
    let set = mongars_config::apply_secrets(settings, &values, &where_)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    tracing::info!(secret = %where_, settings = ?set, "settings read from Vault");
    Ok(set)
}

struct Vault<'a> {
    v: &'a VaultSettings,
    client: reqwest::Client,
}

/// What one call to Vault gave: an answer, or a failure worth retrying.
enum Outcome {
    Done(Value),
    Retry(String),
}

impl Vault<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.v.address.trim_end_matches('/'))
    }

    async fn token(&self) -> anyhow::Result<String> {
        if !self.v.token_file.as_os_str().is_empty() {
            let t = std::fs::read_to_string(&self.v.token_file)
                .with_context(|| format!("vault.token_file {}", self.v.token_file.display()))?;
            return Ok(t.trim().to_string());
        }
        let jwt = std::fs::read_to_string(&self.v.kubernetes_token_file).with_context(|| {
            format!(
                "vault.kubernetes_token_file {}",
                self.v.kubernetes_token_file.display()
            )
        })?;
        let login = format!("auth/{}/login", self.v.kubernetes_mount.trim_matches('/'));
        let body = json!({"role": self.v.kubernetes_role, "jwt": jwt.trim()});
        let answer = self
            .call(&login, || self.client.post(self.url(&login)).json(&body))
            .await
            .with_context(|| {
                format!(
                    "Vault Kubernetes login at {login} as role {:?}",
                    self.v.kubernetes_role
                )
            })?;
        answer["auth"]["client_token"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("Vault login at {login}: no auth.client_token in the answer"))
    }

    async fn read(&self, token: &str, path: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let answer = self
            .call(path, || {
                self.client
                    .get(self.url(path))
                    .header("X-Vault-Token", token)
            })
            .await
            .with_context(|| {
                format!("reading the Vault secret {path} (vault.mount, vault.path)")
            })?;
        let Some(data) = answer["data"]["data"].as_object() else {
            bail!("the Vault secret {path} has no data (is the mount KV version 2?)");
        };
        data.iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => bail!("field {k} of the Vault secret {path} is not a string"),
            })
            .collect()
    }

    /// Send the request `attempts` times at most, waiting 0.5 s, 1 s, 2 s...
    /// between tries while Vault is unreachable, sealed or failing.
    async fn call(
        &self,
        path: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> anyhow::Result<Value> {
        let mut wait = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=self.v.attempts {
            match self.once(path, request()).await? {
                Outcome::Done(v) => return Ok(v),
                Outcome::Retry(why) => last = why,
            }
            if attempt < self.v.attempts {
                tracing::warn!(path, attempt, error = %last, "Vault not answering; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(8));
            }
        }
        bail!("{last} (after {} attempts)", self.v.attempts)
    }

    async fn once(&self, path: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Outcome> {
        let resp = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(tls) = mongars_net::tls_failure(&e) {
                    bail!("Vault's TLS certificate was refused ({tls}): see tls.ca_file");
                }
                return Ok(Outcome::Retry(format!("Vault unreachable: {e}")));
            }
        };
        let status = resp.status();
        match status.as_u16() {
            200..=299 => {
                Ok(Outcome::Done(resp.json().await.with_context(|| {
                    format!("Vault's answer for {path} is not JSON")
                })?))
            }
            404 => bail!("no secret at {path} in Vault (404)"),
            400 | 401 | 403 => bail!(
                "Vault refused access to {path} ({status}): check the token or role and its policy"
            ),
            // 429 standby, 503 sealed, other 5xx: worth another try.
            _ => Ok(Outcome::Retry(format!(
                "Vault answered {status} for {path}"
            ))),
        }
    }
}
