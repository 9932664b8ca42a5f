//! Connection pools and migrations.

use crate::error::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite statement waits for another connection's write lock
/// before it fails with `database is locked` (see `crate::busy`).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Which engine and where.
#[derive(Clone)]
pub enum DbTarget {
    Sqlite(PathBuf),
    /// Connection URL; contains credentials, never logged.
    Postgres(String),
}

#[derive(Clone)]
pub struct DbConfig {
    pub target: DbTarget,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// CA certificates (PEM) to verify PostgreSQL's certificate with, when
    /// the URL asks for verification (`sslmode=verify-ca|verify-full`) and
    /// names no `sslrootcert` itself.
    pub ca_file: Option<PathBuf>,
}

/// A pool on one of the supported engines.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Run the same query code on whichever pool is configured.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Applied and pending migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub applied: Vec<i64>,
    /// Embedded migrations not yet applied (version, description).
    pub pending: Vec<(i64, String)>,
}

impl MigrationStatus {
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

#[derive(Clone, Debug)]
pub struct Database {
    pool: Pool,
}

impl Database {
    /// Open the pool (creating the SQLite file and its folder when missing).
    /// Does not migrate.
    pub async fn connect(cfg: &DbConfig) -> Result<Self, StoreError> {
        let pool = match &cfg.target {
            DbTarget::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Connect(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    // Checkpoint every ~40 MB of log rather than SQLite's
                    // 4 MB: pages written again and again between two
                    // checkpoints are copied back once (15% more chats per
                    // second measured by `bench chat`); the log is cut back
                    // to 64 MB at most after each. Durability is WAL's
                    // either way.
                    .pragma("wal_autocheckpoint", "10000")
                    .pragma("journal_size_limit", "67108864")
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(cfg.max_connections)
                    .after_connect(|conn, _| {
                        Box::pin(crate::busy::install(conn, SQLITE_BUSY_TIMEOUT))
                    })
                    .acquire_timeout(cfg.connect_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(|e| {
                        StoreError::Connect(format!("SQLite at {}: {e}", path.display()))
                    })?;
                Pool::Sqlite(pool)
            }
            DbTarget::Postgres(url) => {
                let mut opts = PgConnectOptions::from_str(url).map_err(|_| {
                    StoreError::Connect("database.url is not a valid PostgreSQL URL".into())
                })?;
                if let Some(ca) = &cfg.ca_file
                    && !url.contains("sslrootcert=")
                {
                    opts = opts.ssl_root_cert(ca);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(cfg.max_connections)
                    .acquire_timeout(cfg.connect_timeout)
                    .connect_with(opts)
                    .await
                    .map_err(|e| StoreError::Connect(format!("PostgreSQL: {}", redact(e))))?;
                Pool::Postgres(pool)
            }
        };
        Ok(Self { pool })
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// "sqlite" or "postgres".
    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self.pool {
            Pool::Sqlite(_) => &SQLITE_MIGRATIONS,
            Pool::Postgres(_) => &POSTGRES_MIGRATIONS,
        }
    }

    /// Apply every pending migration; returns the versions applied now.
    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        let before = self.migration_status().await?;
        let result = on_pool!(&self.pool, |p| self.migrator().run(p).await);
        result.map_err(|e| StoreError::Migrate(e.to_string()))?;
        Ok(before.pending.into_iter().map(|(v, _)| v).collect())
    }

    /// Compare the embedded migrations with those recorded in the database.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let applied: Vec<i64> = if self.has_migrations_table().await? {
            on_pool!(&self.pool, |p| {
                sqlx::query_scalar(
                    "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
                )
                .fetch_all(p)
                .await?
            })
        } else {
            Vec::new()
        };
        let pending = self
            .migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        Ok(MigrationStatus { applied, pending })
    }

    async fn has_migrations_table(&self) -> Result<bool, StoreError> {
        let n: i64 = match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
                )
                .fetch_one(p)
                .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
                )
                .fetch_one(p)
                .await?
            }
        };
        Ok(n > 0)
    }

    /// A round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let one: i64 = on_pool!(&self.pool, |p| {
            sqlx::query_scalar("SELECT CAST(1 AS BIGINT)")
                .fetch_one(p)
                .await?
        });
        debug_assert_eq!(one, 1);
        Ok(())
    }

    /// Whether the connection to the database is encrypted: PostgreSQL over
    /// TLS (`doctor`, tests). SQLite is a local file: `false`.
    pub async fn encrypted(&self) -> Result<bool, StoreError> {
        match &self.pool {
            Pool::Sqlite(_) => Ok(false),
            Pool::Postgres(p) => Ok(sqlx::query_scalar(
                "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), FALSE)",
            )
            .fetch_one(p)
            .await?),
        }
    }

    /// Run one statement built at run time (test set-up only: never with
    /// user input).
    #[cfg(feature = "testing")]
    pub(crate) async fn execute_unchecked(&self, sql: &str) -> Result<(), StoreError> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        on_pool!(&self.pool, |p| sqlx::query(sql)
            .execute(p)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(&self.pool, |p| p.close().await)
    }
}

/// sqlx connection errors may quote the URL; keep only the kind.
fn redact(e: sqlx::Error) -> String {
    match e {
        // A refused TLS handshake arrives as an I/O error whose cause says
        // why ("invalid peer certificate: UnknownIssuer").
        sqlx::Error::Io(io) => match io.get_ref() {
            Some(cause) => format!("I/O error: {} ({cause})", io.kind()),
            None => format!("I/O error: {}", io.kind()),
        },
        sqlx::Error::PoolTimedOut => "timed out".into(),
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Configuration(_) => "invalid connection settings".into(),
        sqlx::Error::Tls(e) => format!("TLS error: {e}"),
        other => other.to_string(),
    }
}
