//! Accounts the benches drive a server child with: the first admin, users
//! registered by it, all with one password, and their bearer tokens.

use anyhow::Context;
use serde_json::json;

/// The password of every bench account.
pub(crate) const PASSWORD: &str = "bench-password-1";

/// Create the first admin `name` on a fresh server; its token.
pub(crate) async fn bootstrap_admin(
    client: &reqwest::Client,
    base: &str,
    name: &str,
) -> anyhow::Result<String> {
    client
        .post(format!("{base}/api/v1/auth/bootstrap-admin"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()
        .context("cannot create the bench admin")?;
    login(client, base, name).await
}

/// Register `name` with the admin's token; the new user's token.
pub(crate) async fn register(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    name: &str,
) -> anyhow::Result<String> {
    client
        .post(format!("{base}/api/v1/user/register"))
        .bearer_auth(admin)
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("cannot register {name}"))?;
    login(client, base, name).await
}

/// `POST /token` for `name`; its access token.
pub(crate) async fn login(
    client: &reqwest::Client,
    base: &str,
    name: &str,
) -> anyhow::Result<String> {
    let body: serde_json::Value = client
        .post(format!("{base}/token"))
        .form(&[("username", name), ("password", PASSWORD)])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .context("no access_token in the login answer")
}
