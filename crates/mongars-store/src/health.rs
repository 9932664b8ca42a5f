//! Readiness checks for `/ready`: the database answers, the schema is current.

use crate::db::Database;
use async_trait::async_trait;
use mongars_core::ports::HealthCheck;

pub struct DatabaseCheck(pub Database);

#[async_trait]
impl HealthCheck for DatabaseCheck {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|e| {
            tracing::warn!(error = %e, "database check failed");
            format!("{} does not answer", self.0.engine())
        })
    }
}

pub struct MigrationsCheck(pub Database);

#[async_trait]
impl HealthCheck for MigrationsCheck {
    fn name(&self) -> &'static str {
        "migrations"
    }

    async fn check(&self) -> Result<(), String> {
        let status = self.0.migration_status().await.map_err(|e| {
            tracing::warn!(error = %e, "migration check failed");
            "cannot read migration state".to_string()
        })?;
        if status.is_current() {
            Ok(())
        } else {
            let names: Vec<String> = status
                .pending
                .iter()
                .map(|(v, d)| format!("{v} {d}"))
                .collect();
            Err(format!(
                "{} pending: {}; run `mongars migrate`",
                names.len(),
                names.join(", ")
            ))
        }
    }
}
