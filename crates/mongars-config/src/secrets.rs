//! Secret settings from a secret store (Vault): values named by setting,
//! applied over every other layer. Only settings that hold secrets can be
//! set this way, and a name that is none is refused rather than ignored (a
//! typo would otherwise leave the setting empty).

use crate::error::{ConfigError, ConfigErrors, Origin};
use crate::{Secret, Settings, validate};
use std::collections::BTreeMap;

/// The secret settings a store may set.
pub const STORE_SETTINGS: &[&str] = &[
    "auth.jwt_secret",
    "database.url",
    "redis.url",
    "metrics.scrape_token",
    "bootstrap.admin_password",
    "embeddings.api_key",
    "llm.backends.NAME.api_key",
];

fn slot<'a>(settings: &'a mut Settings, key: &str) -> Option<&'a mut Secret> {
    Some(match key {
        "auth.jwt_secret" => &mut settings.auth.jwt_secret,
        "database.url" => &mut settings.database.url,
        "redis.url" => &mut settings.redis.url,
        "metrics.scrape_token" => &mut settings.metrics.scrape_token,
        "bootstrap.admin_password" => &mut settings.bootstrap.admin_password,
        "embeddings.api_key" => &mut settings.embeddings.api_key,
        _ => {
            let name = key
                .strip_prefix("llm.backends.")?
                .strip_suffix(".api_key")?;
            &mut settings.llm.backends.get_mut(name)?.api_key
        }
    })
}

/// Set each of `values` (setting name → value) in `settings`, then check the
/// result as at load. `from` names the secret, for messages; values never
/// appear in them. The names of the settings set, on success.
pub fn apply_secrets(
    settings: &mut Settings,
    values: &BTreeMap<String, String>,
    from: &str,
) -> Result<Vec<String>, ConfigErrors> {
    let origin = Origin::Store(from.to_string());
    let mut errors = Vec::new();
    let mut set = Vec::new();
    for (key, value) in values {
        match slot(settings, key) {
            Some(secret) => {
                *secret = Secret::new(value.clone());
                set.push(key.clone());
            }
            None => errors.push(ConfigError::new(
                key.clone(),
                format!(
                    "not a secret setting (one of {})",
                    STORE_SETTINGS.join(", ")
                ),
                origin.clone(),
            )),
        }
    }
    errors.extend(validate::validate(settings));
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_set_by_name_and_other_names_refused() {
        let mut s = crate::defaults().unwrap();
        let mut values = BTreeMap::new();
        values.insert("auth.jwt_secret".to_string(), "j".repeat(40));
        values.insert(
            "database.url".to_string(),
            "postgres://u:p@db/mongars".to_string(),
        );
        values.insert("llm.backends.ollama.api_key".to_string(), "k".into());
        let set = apply_secrets(&mut s, &values, "secret/data/x").unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(s.auth.jwt_secret.expose(), "j".repeat(40));
        assert_eq!(s.llm.backends["ollama"].api_key.expose(), "k");

        values.insert("server.port".to_string(), "1".into());
        values.insert("auth.jwt_secret".to_string(), "short".into());
        let errors = apply_secrets(&mut s, &values, "secret/data/x").unwrap_err();
        let text = errors.to_string();
        assert!(text.contains("server.port: not a secret setting"), "{text}");
        assert!(text.contains("secret secret/data/x"), "{text}");
        assert!(text.contains("auth.jwt_secret"), "{text}");
        assert!(!text.contains("short"), "a value in a message: {text}");
    }
}
