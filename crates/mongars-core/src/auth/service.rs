//! The auth service: the only place that decides who may do what.

use super::password::PasswordHasher;
use super::throttle::{AttemptKeys, LoginThrottle};
use super::token::TokenCodec;
use crate::domain::{NewUser, Password, Role, User, Username};
use crate::error::CoreError;
use crate::ports::{Clock, RepoError, UserRepository};
use std::net::IpAddr;
use std::sync::Arc;

/// Switches that change what the service allows.
#[derive(Debug, Clone, Copy)]
pub struct AuthOptions {
    /// Anyone may register; otherwise only admins create accounts.
    pub open_registration: bool,
    /// `bootstrap_admin` works while no admin exists.
    pub bootstrap_enabled: bool,
}

/// The caller of an authenticated request, as checked against the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub username: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub token: String,
    pub expires_in_secs: u64,
    pub user: User,
}

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    throttle: LoginThrottle,
    hasher: PasswordHasher,
    tokens: TokenCodec,
    clock: Arc<dyn Clock>,
    options: AuthOptions,
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        throttle: LoginThrottle,
        hasher: PasswordHasher,
        tokens: TokenCodec,
        clock: Arc<dyn Clock>,
        options: AuthOptions,
    ) -> Self {
        Self {
            users,
            throttle,
            hasher,
            tokens,
            clock,
            options,
        }
    }

    pub fn options(&self) -> AuthOptions {
        self.options
    }

    pub fn throttle(&self) -> &LoginThrottle {
        &self.throttle
    }

    /// Check a username and password and issue a token. Unknown users, wrong
    /// passwords and disabled accounts all answer `InvalidCredentials` after
    /// the same argon2 work.
    #[tracing::instrument(skip_all, fields(username = %username))]
    pub async fn login(
        &self,
        username: &str,
        password: &Password,
        client: Option<IpAddr>,
    ) -> Result<LoginOutcome, CoreError> {
        let keys = AttemptKeys::new(username, client);
        let now = self.clock.now();
        self.throttle.check(&keys, now.timestamp_millis()).await?;

        let stored = match Username::parse(username) {
            Ok(name) => self.users.find_by_key(&name.key()).await?,
            Err(_) => None,
        };
        let verification = self
            .hasher
            .verify(password, stored.as_ref().map(|s| s.password_hash.as_str()))
            .await?;
        let user = match stored {
            Some(s) if verification.matches && !s.user.disabled => s.user,
            other => {
                if other.is_some_and(|s| s.user.disabled) && verification.matches {
                    tracing::info!("login refused: account disabled");
                } else {
                    tracing::info!("login refused: invalid credentials");
                }
                self.throttle
                    .record_failure(&keys, now.timestamp_millis())
                    .await?;
                return Err(CoreError::InvalidCredentials);
            }
        };
        self.throttle.record_success(&keys).await?;
        if verification.needs_rehash {
            let hash = self.hasher.hash(password).await?;
            self.users.update_password(user.id, &hash, false).await?;
            tracing::info!("password hash upgraded to current parameters");
        }
        self.users.record_login(user.id, now).await?;
        let issued = self.tokens.issue(&user, now)?;
        tracing::info!(user_id = user.id, "login succeeded");
        Ok(LoginOutcome {
            token: issued.token,
            expires_in_secs: issued.expires_in_secs,
            user,
        })
    }

    /// Check a bearer token against its signature, expiry and the account's
    /// current state (exists, enabled, same token version).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, CoreError> {
        let claims = self.tokens.decode(token)?;
        let Ok(name) = Username::parse(&claims.sub) else {
            return Err(CoreError::InvalidToken);
        };
        let Some(stored) = self.users.find_by_key(&name.key()).await? else {
            return Err(CoreError::InvalidToken);
        };
        let user = stored.user;
        if user.disabled || user.token_version != claims.ver {
            tracing::debug!(user_id = user.id, "token refused: revoked");
            return Err(CoreError::InvalidToken);
        }
        Ok(Principal {
            id: user.id,
            username: user.username,
            role: user.role,
        })
    }

    /// Create an account. Without open registration only an admin may.
    pub async fn register(
        &self,
        actor: Option<&Principal>,
        username: Username,
        password: &Password,
    ) -> Result<User, CoreError> {
        if !self.options.open_registration {
            match actor {
                None => return Err(CoreError::MissingToken),
                Some(p) if !p.is_admin() => {
                    return Err(CoreError::Forbidden("Only admins can create accounts"));
                }
                Some(_) => {}
            }
        }
        self.create_user(username, password, Role::User).await
    }

    /// Create an account with any role (CLI and admin tools).
    pub async fn create_user(
        &self,
        username: Username,
        password: &Password,
        role: Role,
    ) -> Result<User, CoreError> {
        let password_hash = self.hasher.hash(password).await?;
        let new = NewUser {
            username,
            password_hash,
            role,
        };
        match self.users.insert(new).await {
            Ok(u) => {
                tracing::info!(user_id = u.id, role = role.as_str(), "account created");
                Ok(u)
            }
            Err(RepoError::Duplicate) => Err(CoreError::UserExists),
            Err(e) => Err(e.into()),
        }
    }

    /// The first admin, through the bootstrap endpoint.
    pub async fn bootstrap_admin(
        &self,
        username: Username,
        password: &Password,
    ) -> Result<User, CoreError> {
        if !self.options.bootstrap_enabled {
            return Err(CoreError::BootstrapDisabled);
        }
        self.create_first_admin(username, password).await
    }

    /// Create an admin only if none exists (`AdminExists` otherwise).
    pub async fn create_first_admin(
        &self,
        username: Username,
        password: &Password,
    ) -> Result<User, CoreError> {
        if self.users.count_admins().await? > 0 {
            return Err(CoreError::AdminExists);
        }
        let password_hash = self.hasher.hash(password).await?;
        let new = NewUser {
            username,
            password_hash,
            role: Role::Admin,
        };
        match self.users.insert_first_admin(new).await {
            Ok(Some(u)) => {
                tracing::info!(user_id = u.id, "first admin created");
                Ok(u)
            }
            Ok(None) => Err(CoreError::AdminExists),
            Err(RepoError::Duplicate) => Err(CoreError::UserExists),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_users(&self) -> Result<Vec<User>, CoreError> {
        Ok(self.users.list().await?)
    }

    /// The caller changes their own password; every older token stops working.
    pub async fn change_password(
        &self,
        principal: &Principal,
        old: &Password,
        new: &Password,
    ) -> Result<(), CoreError> {
        let name = Username::parse(&principal.username)?;
        let stored = self
            .users
            .find_by_key(&name.key())
            .await?
            .ok_or(CoreError::InvalidToken)?;
        let v = self.hasher.verify(old, Some(&stored.password_hash)).await?;
        if !v.matches {
            return Err(CoreError::WrongPassword);
        }
        let hash = self.hasher.hash(new).await?;
        self.users
            .update_password(stored.user.id, &hash, true)
            .await?;
        tracing::info!(
            user_id = stored.user.id,
            "password changed; older tokens revoked"
        );
        Ok(())
    }

    /// An operator sets a password (CLI); every older token stops working.
    pub async fn set_password(&self, username: &Username, new: &Password) -> Result<(), CoreError> {
        let user = self.find(username).await?;
        let hash = self.hasher.hash(new).await?;
        self.users.update_password(user.id, &hash, true).await?;
        Ok(())
    }

    /// Disable or re-enable an account; disabling revokes its tokens.
    pub async fn set_disabled(
        &self,
        username: &Username,
        disabled: bool,
    ) -> Result<User, CoreError> {
        let user = self.find(username).await?;
        self.users.set_disabled(user.id, disabled).await?;
        self.find(username).await
    }

    pub async fn find(&self, username: &Username) -> Result<User, CoreError> {
        self.users
            .find_by_key(&username.key())
            .await?
            .map(|s| s.user)
            .ok_or(CoreError::NotFound("User"))
    }

    pub async fn count_admins(&self) -> Result<u64, CoreError> {
        Ok(self.users.count_admins().await?)
    }
}
