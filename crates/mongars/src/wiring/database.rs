//! The database from settings: the data folder, the pool, its CA.

use anyhow::Context;
use mongars_config::{DatabaseTarget, Settings};
use mongars_store::{Database, DbConfig, DbTarget};
use std::time::Duration;

/// Open the configured database without migrating. The data folder is
/// created private to this user (0700) when missing: it holds the database
/// and the signing key.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    create_private_dir(&settings.data_dir)?;
    let target = match settings.database_target() {
        DatabaseTarget::Sqlite(path) => DbTarget::Sqlite(path),
        DatabaseTarget::Postgres(url) => DbTarget::Postgres(url.expose().to_string()),
    };
    let cfg = DbConfig {
        target,
        max_connections: crate::hardware::tuning::tuned(settings)
            .database
            .max_connections,
        connect_timeout: Duration::from_secs(settings.database.connect_timeout_secs),
        ca_file: Some(settings.tls.ca_file.clone()).filter(|p| !p.as_os_str().is_empty()),
    };
    Ok(Database::connect(&cfg).await?)
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create data folder {} (data_dir)", dir.display()))
}
