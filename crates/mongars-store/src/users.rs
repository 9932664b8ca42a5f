//! Accounts, implementing the core's `UserRepository`.

use crate::db::{Database, on_pool};
use crate::error::repo_err;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongars_core::domain::{NewUser, Role, StoredUser, User};
use mongars_core::ports::{RepoError, UserRepository};

/// The columns of an account without its password hash (a macro, so that
/// the statements below can be built from it at compile time).
macro_rules! account {
    () => {
        "id, username, role, disabled, token_version, created_at, updated_at, last_login_at"
    };
}

/// An account without its password hash: what every authenticated request
/// and the admin listing read.
const ACCOUNT: &str = account!();
/// An account with its password hash, for logins and password changes.
const COLUMNS: &str = concat!(account!(), ", password_hash");

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: i64,
    username: String,
    role: String,
    disabled: bool,
    token_version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<AccountRow> for User {
    fn from(r: AccountRow) -> Self {
        User {
            id: r.id,
            username: r.username,
            role: Role::from_stored(&r.role),
            disabled: r.disabled,
            token_version: r.token_version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            last_login_at: r.last_login_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    #[sqlx(flatten)]
    account: AccountRow,
    password_hash: String,
}

impl From<UserRow> for StoredUser {
    fn from(r: UserRow) -> Self {
        StoredUser {
            user: r.account.into(),
            password_hash: r.password_hash,
        }
    }
}

#[derive(Clone)]
pub struct SqlUserRepository {
    db: Database,
}

impl SqlUserRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

const INSERT: &str = concat!(
    "INSERT INTO users \
    (username, username_key, password_hash, role, disabled, token_version, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, FALSE, 0, $5, $5) RETURNING ",
    account!()
);

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn insert(&self, new: NewUser) -> Result<User, RepoError> {
        let now = Utc::now();
        let row: AccountRow = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(INSERT)
                .bind(new.username.as_str())
                .bind(new.username.key())
                .bind(&new.password_hash)
                .bind(new.role.as_str())
                .bind(now)
                .fetch_one(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(row.into())
    }

    async fn insert_first_admin(&self, new: NewUser) -> Result<Option<User>, RepoError> {
        let now = Utc::now();
        on_pool!(self.db.pool(), |p| {
            let mut tx = p.begin().await.map_err(repo_err)?;
            // The marker's primary key makes concurrent bootstraps collide
            // even where the engine would let both read "no admin yet".
            let marked = sqlx::query(
                "INSERT INTO app_markers (name, created_at) VALUES ('first_admin', $1)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await;
            match marked.map_err(repo_err) {
                Ok(_) => {}
                Err(RepoError::Duplicate) => return Ok(None),
                Err(e) => return Err(e),
            }
            let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(&mut *tx)
                .await
                .map_err(repo_err)?;
            if admins > 0 {
                return Ok(None);
            }
            let row: AccountRow = sqlx::query_as(INSERT)
                .bind(new.username.as_str())
                .bind(new.username.key())
                .bind(&new.password_hash)
                .bind(Role::Admin.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await
                .map_err(repo_err)?;
            tx.commit().await.map_err(repo_err)?;
            Ok(Some(row.into()))
        })
    }

    async fn find_by_key(&self, key: &str) -> Result<Option<StoredUser>, RepoError> {
        let row: Option<UserRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM users WHERE username_key = $1"
            )))
            .bind(key)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(StoredUser::from))
    }

    async fn find_by_id(&self, id: i64) -> Result<Option<User>, RepoError> {
        let row: Option<AccountRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT} FROM users WHERE id = $1"
            )))
            .bind(id)
            .fetch_optional(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(row.map(User::from))
    }

    async fn list(&self) -> Result<Vec<User>, RepoError> {
        let rows: Vec<AccountRow> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ACCOUNT} FROM users ORDER BY username_key"
            )))
            .fetch_all(p)
            .await
        })
        .map_err(repo_err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    async fn count_admins(&self) -> Result<u64, RepoError> {
        let n: i64 = on_pool!(self.db.pool(), |p| {
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(crate::bigint::from_db(n))
    }

    async fn update_password(&self, id: i64, hash: &str, revoke: bool) -> Result<(), RepoError> {
        let bump: i64 = i64::from(revoke);
        let done = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE users SET password_hash = $1, token_version = token_version + $2, \
                 updated_at = $3 WHERE id = $4",
            )
            .bind(hash)
            .bind(bump)
            .bind(Utc::now())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        found(done)
    }

    async fn set_disabled(&self, id: i64, disabled: bool) -> Result<(), RepoError> {
        let done = on_pool!(self.db.pool(), |p| {
            sqlx::query(
                "UPDATE users SET disabled = $1, token_version = token_version + 1, \
                 updated_at = $2 WHERE id = $3",
            )
            .bind(disabled)
            .bind(Utc::now())
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })
        .map_err(repo_err)?;
        found(done)
    }

    async fn record_login(&self, id: i64, at: DateTime<Utc>) -> Result<(), RepoError> {
        on_pool!(self.db.pool(), |p| {
            sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                .bind(at)
                .bind(id)
                .execute(p)
                .await
                .map(|_| ())
        })
        .map_err(repo_err)
    }
}

fn found(rows: u64) -> Result<(), RepoError> {
    if rows == 0 {
        Err(RepoError::Other("no such user".into()))
    } else {
        Ok(())
    }
}
