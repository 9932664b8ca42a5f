//! Style profiles, one JSON document per user with a version for
//! optimistic writes, implementing the core's `ProfileRepository` on the
//! memory repository (a user's forget-me removes both).

use crate::SqlMemoryRepository;
use crate::bigint::from_db;
use crate::db::on_pool;
use crate::error::repo_err;
use async_trait::async_trait;
use mongars_core::ports::{ProfileRepository, ProfileSave, RepoError, StoredProfile};

/// Store a [`ProfileSave`] on an executor (a pool, or a transaction shared
/// with another write): the rows written, 0 when another save came in
/// between.
macro_rules! save_profile {
    ($e:expr, $save:expr) => {{
        let save: &mongars_core::ports::ProfileSave = $save;
        match save.read {
            None => sqlx::query(
                "INSERT INTO user_profiles (user_id, profile, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(save.user_id)
            .bind(&save.json)
            .bind(save.at)
            .execute($e)
            .await
            .map(|r| r.rows_affected()),
            Some(version) => sqlx::query(
                "UPDATE user_profiles SET profile = $1, updated_at = $2, \
                 version = version + 1 WHERE user_id = $3 AND version = $4",
            )
            .bind(&save.json)
            .bind(save.at)
            .bind(save.user_id)
            .bind($crate::bigint::to_db(version))
            .execute($e)
            .await
            .map(|r| r.rows_affected()),
        }
    }};
}
pub(crate) use save_profile;

#[async_trait]
impl ProfileRepository for SqlMemoryRepository {
    async fn load(&self, user_id: i64) -> Result<Option<StoredProfile>, RepoError> {
        let row: Option<(String, i64)> = on_pool!(self.db.pool(), |p| {
            sqlx::query_as("SELECT profile, version FROM user_profiles WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(p)
                .await
        })
        .map_err(repo_err)?;
        Ok(row.map(|(json, version)| StoredProfile {
            json,
            version: from_db(version),
        }))
    }

    async fn save(&self, save: &ProfileSave) -> Result<bool, RepoError> {
        let written = on_pool!(self.db.pool(), |p| save_profile!(p, save)).map_err(repo_err)?;
        Ok(written == 1)
    }
}
