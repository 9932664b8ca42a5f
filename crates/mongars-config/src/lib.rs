//! Settings for monGARS, loaded once at start-up and passed down.
//!
//! Precedence, lowest first:
//! 1. `config/default.toml`, embedded in the binary: every key, its type and default;
//! 2. an optional TOML file (`--config PATH` or `MONGARS_CONFIG`);
//! 3. `MONGARS_*` environment variables, nested with `__`
//!    (`MONGARS_SERVER__PORT=9000` sets `server.port`).
//!
//! Loading reports every problem at once, each with its dotted key and where the
//! bad value came from. This crate is the only place in monGARS that reads the
//! process environment (`clippy.toml` forbids `std::env::var` elsewhere).

mod error;
mod layers;
mod redact;
mod secret;
mod secrets;
mod settings;
mod settings_memory;
mod settings_peers;
mod settings_realtime;
mod settings_training;
mod validate;
mod validate_llm;
mod validate_memory;
mod validate_server;

pub use error::{ConfigError, ConfigErrors, Origin};
pub use layers::{CONFIG_PATH_VAR, ENV_PREFIX};
pub use redact::redact_url_credentials;
pub use secret::{REDACTED, Secret};
pub use secrets::{STORE_SETTINGS, apply_secrets};
pub use settings::*;
pub use validate::MIN_JWT_SECRET_BYTES;

use std::path::{Path, PathBuf};
use toml::Table;

/// The embedded defaults, as shipped.
pub const DEFAULTS_TOML: &str = include_str!("../../../config/default.toml");

/// What to load settings from. Tests build this by hand; the binary uses
/// [`LoadOptions::from_process`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A settings file; `None` means defaults and environment only.
    pub file: Option<PathBuf>,
    /// Environment variables as (name, value); only `MONGARS_*` are used.
    pub env: Vec<(String, String)>,
}

impl LoadOptions {
    /// Read the process environment. `cli_file` (from `--config`) wins over
    /// `MONGARS_CONFIG`. Variables whose value is not UTF-8 are reported.
    pub fn from_process(cli_file: Option<PathBuf>) -> Result<Self, ConfigErrors> {
        let mut env = Vec::new();
        let mut errors = Vec::new();
        #[allow(clippy::disallowed_methods)]
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().map(str::to_owned) else {
                continue;
            };
            if !name.starts_with(ENV_PREFIX) {
                continue;
            }
            match value.into_string() {
                Ok(v) => env.push((name, v)),
                Err(_) => errors.push(ConfigError::new(
                    name.trim_start_matches(ENV_PREFIX).to_ascii_lowercase(),
                    "value is not valid UTF-8",
                    Origin::Env(name.clone()),
                )),
            }
        }
        if !errors.is_empty() {
            return Err(ConfigErrors(errors));
        }
        let file = cli_file.or_else(|| {
            env.iter()
                .find(|(n, v)| n == CONFIG_PATH_VAR && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        });
        Ok(Self { file, env })
    }
}

/// Load, merge, type-check and validate settings.
pub fn load(options: &LoadOptions) -> Result<Settings, ConfigErrors> {
    let Some(path) = &options.file else {
        return load_layers(Ok(None), &options.env);
    };
    let origin = path.display().to_string();
    match read_file(path) {
        Ok(text) => load_layers(Ok(Some((&text, &origin))), &options.env),
        Err(e) => load_layers(Err(e), &options.env),
    }
}

/// [`load`] with the settings file's text (and the name it is known by in
/// messages) given directly: the defaults, then the file, then `env`.
pub fn load_text(
    file: Option<(&str, &str)>,
    env: &[(String, String)],
) -> Result<Settings, ConfigErrors> {
    load_layers(Ok(file), env)
}

fn load_layers(
    file: Result<Option<(&str, &str)>, ConfigError>,
    env: &[(String, String)],
) -> Result<Settings, ConfigErrors> {
    let mut errors = Vec::new();
    let mut table = defaults_table()?;
    match file {
        Ok(Some((text, origin))) => match parse_file(text, origin) {
            Ok(file) => layers::merge_file(&mut table, file, origin, &mut errors),
            Err(e) => errors.push(e),
        },
        Ok(None) => {}
        Err(e) => errors.push(e),
    }
    layers::apply_env(&mut table, env.iter().cloned(), &mut errors);
    // A value refused above kept its default, so the tree still has the right
    // types: go on and report the remaining problems in the same run.
    match serde_path_to_error::deserialize::<_, Settings>(toml::Value::Table(table)) {
        Ok(settings) => {
            errors.extend(validate::validate(&settings));
            if errors.is_empty() {
                return Ok(settings);
            }
        }
        Err(e) => errors.push(ConfigError::new(
            e.path().to_string(),
            e.inner().to_string(),
            Origin::Validation,
        )),
    }
    Err(ConfigErrors(errors))
}

/// Settings from the embedded defaults alone (plus nothing else): for tests
/// and tools that then adjust fields directly.
pub fn defaults() -> Result<Settings, ConfigErrors> {
    load(&LoadOptions::default())
}

fn defaults_table() -> Result<Table, ConfigErrors> {
    toml::from_str(DEFAULTS_TOML).map_err(|e| {
        ConfigErrors::single(ConfigError::new(
            "(defaults)",
            format!("embedded defaults do not parse: {e}"),
            Origin::Defaults,
        ))
    })
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    let origin = Origin::File(path.display().to_string());
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new("(file)", format!("cannot read: {e}"), origin))
}

fn parse_file(text: &str, name: &str) -> Result<Table, ConfigError> {
    toml::from_str(text).map_err(|e| {
        ConfigError::new(
            "(file)",
            format!("not valid TOML: {e}"),
            Origin::File(name.to_string()),
        )
    })
}

#[cfg(test)]
mod tests;
