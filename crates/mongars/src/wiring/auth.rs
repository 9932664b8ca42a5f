//! The auth service and the first admin from settings.

use anyhow::Context;
use mongars_config::Settings;
use mongars_core::CoreError;
use mongars_core::auth::{
    AuthOptions, AuthParts, AuthService, HashParams, LoginThrottle, PasswordHasher, ThrottlePolicy,
    TokenCodec,
};
use mongars_core::domain::{Password, Username};
use mongars_core::ports::Clock;
use mongars_store::{Database, SqlApiKeyRepository, SqlThrottleStore, SqlUserRepository};
use std::sync::Arc;

/// The auth service on `db`, signing with `key`.
pub async fn auth_service(
    settings: &Settings,
    db: &Database,
    key: &[u8],
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AuthService> {
    let a = &settings.auth;
    let hasher = PasswordHasher::new(
        HashParams {
            memory_kib: a.argon2_memory_kib,
            iterations: a.argon2_iterations,
            parallelism: a.argon2_parallelism,
        },
        a.max_concurrent_hashes as usize,
    )
    .await?;
    let throttle = LoginThrottle::new(
        Arc::new(SqlThrottleStore::new(db.clone())),
        ThrottlePolicy {
            window_secs: a.throttle.window_secs,
            max_failures_per_user: a.throttle.max_failures_per_user,
            max_failures_per_address: a.throttle.max_failures_per_address,
        },
    );
    Ok(AuthService::new(
        AuthParts {
            users: Arc::new(SqlUserRepository::new(db.clone())),
            keys: Arc::new(SqlApiKeyRepository::new(db.clone())),
            throttle,
            hasher,
            tokens: TokenCodec::new(key, u64::from(a.token_ttl_minutes) * 60),
            clock,
        },
        AuthOptions {
            open_registration: a.open_registration,
            bootstrap_enabled: settings.bootstrap.endpoint_enabled,
        },
    ))
}

/// Create the admin named in `[bootstrap]` unless an admin exists.
pub async fn bootstrap_from_settings(
    settings: &Settings,
    auth: &AuthService,
) -> anyhow::Result<()> {
    let b = &settings.bootstrap;
    if b.admin_username.is_empty() {
        if auth.count_admins().await? == 0 {
            tracing::warn!(
                "no admin account yet: run `mongars user add NAME --admin`, set \
                 bootstrap.admin_username/admin_password, or POST /api/v1/auth/bootstrap-admin"
            );
        }
        return Ok(());
    }
    let username = Username::parse(&b.admin_username).context("bootstrap.admin_username")?;
    let password = Password::new_secret(b.admin_password.expose(), "bootstrap.admin_password")
        .context("bootstrap.admin_password")?;
    match auth.create_first_admin(username, &password).await {
        Ok(user) => tracing::info!(username = %user.username, "first admin created from settings"),
        Err(CoreError::AdminExists) => {
            tracing::debug!("an admin exists; bootstrap settings ignored")
        }
        Err(CoreError::UserExists) => tracing::warn!(
            username = %b.admin_username,
            "bootstrap.admin_username names an existing non-admin account; no admin created"
        ),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
