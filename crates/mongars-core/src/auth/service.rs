//! The auth service: the only place that decides who may do what.

use super::password::PasswordHasher;
use super::throttle::{AttemptKeys, LoginThrottle};
use super::token::TokenCodec;
use crate::domain::{NewUser, Password, Role, User, Username, looks_like_key};
use crate::error::CoreError;
use crate::ports::{ApiKeyRepository, Clock, EventBus, RepoError, UserRepository};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

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
    /// The account's token version when it was checked: a password change
    /// or disabling bumps it, and sessions holding an older one are revoked.
    pub version: i64,
    /// The API key the caller used, if it was one (not a token).
    pub key_id: Option<String>,
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

/// What an [`AuthService`] is made of.
pub struct AuthParts {
    pub users: Arc<dyn UserRepository>,
    pub keys: Arc<dyn ApiKeyRepository>,
    pub throttle: LoginThrottle,
    pub hasher: PasswordHasher,
    pub tokens: TokenCodec,
    pub clock: Arc<dyn Clock>,
}

pub struct AuthService {
    pub(super) users: Arc<dyn UserRepository>,
    pub(super) keys: Arc<dyn ApiKeyRepository>,
    throttle: LoginThrottle,
    hasher: PasswordHasher,
    tokens: TokenCodec,
    pub(super) clock: Arc<dyn Clock>,
    options: AuthOptions,
    revocations: OnceLock<Arc<dyn EventBus>>,
}

impl AuthService {
    pub fn new(parts: AuthParts, options: AuthOptions) -> Self {
        Self {
            users: parts.users,
            keys: parts.keys,
            throttle: parts.throttle,
            hasher: parts.hasher,
            tokens: parts.tokens,
            clock: parts.clock,
            options,
            revocations: OnceLock::new(),
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
        let now = self.clock.now();
        let attempt = self
            .throttle
            .begin(AttemptKeys::new(username, client), now.timestamp_millis())
            .await?;
        let checked = async {
            let stored = match Username::parse(username) {
                Ok(name) => self.users.find_by_key(&name.key()).await?,
                Err(_) => None,
            };
            let verification = self
                .hasher
                .verify(password, stored.as_ref().map(|s| s.password_hash.as_str()))
                .await?;
            Ok::<_, CoreError>((stored, verification))
        };
        let (attempt, (stored, verification)) =
            self.throttle.unless_failed(attempt, checked.await).await?;
        let user = match stored {
            Some(s) if verification.matches && !s.user.disabled => s.user,
            other => {
                if other.is_some_and(|s| s.user.disabled) && verification.matches {
                    tracing::info!("login refused: account disabled");
                } else {
                    tracing::info!("login refused: invalid credentials");
                }
                self.throttle.failed(attempt);
                return Err(CoreError::InvalidCredentials);
            }
        };
        self.throttle.succeeded(attempt).await?;
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
        if looks_like_key(token) {
            return self.authenticate_key(token).await;
        }
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
            version: user.token_version,
            key_id: None,
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

    /// The caller changes their own password; every older token stops
    /// working and their open sockets close. Wrong current passwords are
    /// throttled like failed logins (same counters).
    pub async fn change_password(
        &self,
        principal: &Principal,
        old: &Password,
        new: &Password,
        client: Option<IpAddr>,
    ) -> Result<(), CoreError> {
        let name = Username::parse(&principal.username)?;
        let now = self.clock.now();
        let attempt = self
            .throttle
            .begin(
                AttemptKeys::new(name.as_str(), client),
                now.timestamp_millis(),
            )
            .await?;
        let checked = async {
            let stored = self
                .users
                .find_by_key(&name.key())
                .await?
                .ok_or(CoreError::InvalidToken)?;
            let v = self.hasher.verify(old, Some(&stored.password_hash)).await?;
            Ok::<_, CoreError>((stored, v))
        };
        let (attempt, (stored, v)) = self.throttle.unless_failed(attempt, checked.await).await?;
        if !v.matches {
            tracing::info!(
                user_id = stored.user.id,
                "password change refused: wrong current password"
            );
            self.throttle.failed(attempt);
            return Err(CoreError::WrongPassword);
        }
        self.throttle.succeeded(attempt).await?;
        let hash = self.hasher.hash(new).await?;
        self.users
            .update_password(stored.user.id, &hash, true)
            .await?;
        self.revoked(stored.user.id);
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
        self.revoked(user.id);
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
        if disabled {
            self.revoked(user.id);
        }
        self.find(username).await
    }

    /// Whether `who` may still act: the account exists, is enabled and has
    /// not had its tokens revoked since `who` was checked. Long-lived
    /// sessions (WebSockets) ask this before acting and now and then.
    pub async fn still_valid(&self, who: &Principal) -> Result<bool, CoreError> {
        let Ok(name) = Username::parse(&who.username) else {
            return Ok(false);
        };
        let account = match self.users.find_by_key(&name.key()).await? {
            Some(s) => {
                s.user.id == who.id && !s.user.disabled && s.user.token_version == who.version
            }
            None => false,
        };
        match &who.key_id {
            Some(id) if account => self.key_active(who.id, id).await,
            _ => Ok(account),
        }
    }

    /// Tell every replica to close the user's open sessions.
    pub(super) fn revoked(&self, user_id: i64) {
        match self.revocations.get() {
            Some(bus) => bus.revoke(user_id),
            None => tracing::debug!(
                user_id,
                "no session bus: open sockets notice on their next check"
            ),
        }
    }

    /// Announce revocations (disable, password change) on `bus`, which
    /// closes the user's sockets on every replica. Set once, after the bus
    /// exists (it is built after this service).
    pub fn announce_revocations(&self, bus: Arc<dyn EventBus>) {
        let _ = self.revocations.set(bus);
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
