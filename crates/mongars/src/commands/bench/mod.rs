//! `mongars bench ...`: figures measured on this machine, each next to a
//! baseline run in the same process.

mod accounts;
mod args;
mod auth;
mod chat;
mod generate;
mod memory;
mod moves;
mod overload;
mod peers;
mod realtime;
mod router;
mod soak;
mod sweep;
mod train;
mod trend;
mod weights;

pub use args::BenchCommand;
pub use auth::run as auth;
pub use chat::{fake_openai, run as chat};
pub use generate::run as generate;
pub use memory::run as memory;
pub use overload::run as overload;
pub use peers::run as peers;
pub use realtime::run as realtime;
pub use router::run as router;
pub use soak::run as soak;
pub use train::run as train;

/// The `p`-th percentile of `values` (nearest rank).
pub(crate) fn pct(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
}

/// `d` in milliseconds.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A throwaway, migrated SQLite database in the temp folder.
pub(crate) struct ScratchDb {
    pub db: mongars_store::Database,
    dir: std::path::PathBuf,
}

impl ScratchDb {
    pub async fn open(tag: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("mongars-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let db = mongars_store::Database::connect(&mongars_store::DbConfig {
            target: mongars_store::DbTarget::Sqlite(dir.join("bench.db")),
            max_connections: 5,
            connect_timeout: std::time::Duration::from_secs(5),
            ca_file: None,
        })
        .await?;
        db.migrate().await?;
        Ok(Self { db, dir })
    }

    /// A user account to chat as.
    pub async fn user(&self, name: &str) -> anyhow::Result<mongars_core::auth::Principal> {
        use mongars_core::domain::{NewUser, Role, Username};
        let user = mongars_core::ports::UserRepository::insert(
            &mongars_store::SqlUserRepository::new(self.db.clone()),
            NewUser {
                username: Username::parse(name)?,
                password_hash: "unused".into(),
                role: Role::User,
            },
        )
        .await?;
        Ok(mongars_core::auth::Principal {
            id: user.id,
            username: name.into(),
            role: Role::User,
            version: user.token_version,
            key_id: None,
        })
    }

    pub async fn close(self) {
        self.db.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `settings` with replies of at most `max_tokens` and no rate limit.
pub(crate) fn unthrottled(
    settings: &mongars_config::Settings,
    max_tokens: u32,
) -> mongars_config::Settings {
    let mut settings = settings.clone();
    settings.llm.role_mut(false).max_tokens = max_tokens;
    settings.conversation.rate_limit_per_minute = 1_000_000;
    settings.conversation.rate_limit_burst = 1_000_000;
    settings
}
