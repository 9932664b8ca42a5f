//! Checks that need more than a type: ranges, lengths, combinations.
//! Every rule pushes its own error so the operator sees all of them at once.

use crate::error::{ConfigError, Origin};
use crate::settings::Settings;

/// Shortest accepted HS256 key, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;
const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

pub fn validate(s: &Settings) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, key: &str, message: String| {
        if !ok {
            errors.push(ConfigError::new(key, message, Origin::Validation));
        }
    };

    check(
        !s.data_dir.as_os_str().is_empty(),
        "data_dir",
        "must not be empty".into(),
    );
    crate::validate_server::validate(s, &mut check);

    let url = s.database.url.expose();
    check(
        url.is_empty()
            || url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"),
        "database.url",
        "must be empty (SQLite in data_dir), sqlite://PATH or postgres://...".into(),
    );
    check(
        s.database.max_connections <= 1000,
        "database.max_connections",
        "must be at most 1000 (0: chosen for the machine)".into(),
    );
    check(
        s.database.connect_timeout_secs >= 1,
        "database.connect_timeout_secs",
        "must be at least 1".into(),
    );

    let key_len = s.auth.jwt_secret.expose().len();
    check(
        key_len == 0 || key_len >= MIN_JWT_SECRET_BYTES,
        "auth.jwt_secret",
        format!(
            "must be at least {MIN_JWT_SECRET_BYTES} bytes (got {key_len}); \
             leave it empty to have one generated"
        ),
    );
    check(
        (1..=60 * 24 * 30).contains(&s.auth.token_ttl_minutes),
        "auth.token_ttl_minutes",
        "must be between 1 and 43200 (30 days)".into(),
    );
    let a = &s.auth;
    check(
        (1..=16).contains(&a.argon2_parallelism),
        "auth.argon2_parallelism",
        "must be between 1 and 16".into(),
    );
    check(
        a.argon2_memory_kib >= 8 * a.argon2_parallelism.max(1) && a.argon2_memory_kib <= 4 << 20,
        "auth.argon2_memory_kib",
        "must be at least 8 x argon2_parallelism and at most 4194304 (4 GiB)".into(),
    );
    check(
        (1..=64).contains(&a.argon2_iterations),
        "auth.argon2_iterations",
        "must be between 1 and 64".into(),
    );
    check(
        a.throttle.window_secs >= 1,
        "auth.throttle.window_secs",
        "must be at least 1".into(),
    );
    check(
        a.throttle.max_failures_per_user >= 1,
        "auth.throttle.max_failures_per_user",
        "must be at least 1".into(),
    );
    check(
        a.throttle.max_failures_per_address >= 1,
        "auth.throttle.max_failures_per_address",
        "must be at least 1".into(),
    );

    let b = &s.bootstrap;
    check(
        b.admin_username.is_empty() != b.admin_password.is_set(),
        "bootstrap.admin_password",
        "bootstrap.admin_username and bootstrap.admin_password must be set together".into(),
    );
    check(
        !b.admin_password.is_set() || b.admin_password.expose().chars().count() >= 8,
        "bootstrap.admin_password",
        "must be at least 8 characters".into(),
    );

    let e = &s.llm.embedded;
    check(
        !e.model_path.as_os_str().is_empty(),
        "llm.embedded.model_path",
        "must name a GGUF file".into(),
    );
    check(
        e.context_tokens == 0 || (256..=1 << 20).contains(&e.context_tokens),
        "llm.embedded.context_tokens",
        "must be 0 (chosen for the machine) or between 256 and 1048576".into(),
    );
    check(
        e.parallel <= 64,
        "llm.embedded.parallel",
        "must be between 0 (chosen for the machine) and 64".into(),
    );
    check(
        (1..=100_000).contains(&e.queue_capacity),
        "llm.embedded.queue_capacity",
        "must be between 1 and 100000".into(),
    );
    check(
        e.max_queue_wait_ms <= 3_600_000,
        "llm.embedded.max_queue_wait_ms",
        "must be at most 3600000 (an hour)".into(),
    );
    check(
        e.threads <= 1024,
        "llm.embedded.threads",
        "must be at most 1024".into(),
    );
    let c = &s.conversation;
    check(
        c.history_turns <= 100,
        "conversation.history_turns",
        "must be at most 100".into(),
    );
    check(
        (1..=100_000).contains(&c.max_message_chars),
        "conversation.max_message_chars",
        "must be between 1 and 100000".into(),
    );
    check(
        c.rate_limit_per_minute >= 1 && c.rate_limit_burst >= 1,
        "conversation.rate_limit_per_minute",
        "rate_limit_per_minute and rate_limit_burst must be at least 1".into(),
    );

    let ca = &s.tls.ca_file;
    check(
        ca.as_os_str().is_empty() || ca.is_file(),
        "tls.ca_file",
        format!("{} is not a readable file", ca.display()),
    );
    crate::validate_llm::validate(s, &mut check);
    crate::validate_memory::validate(s, &mut check);
    crate::settings_realtime::validate(s, &mut check);
    crate::settings_training::validate(s, &mut check);
    crate::settings_peers::validate(s, &mut check);
    check(
        level_ok(&s.logging.level),
        "logging.level",
        format!(
            "{:?} is not a log filter: use a level ({}) or target=level pairs separated by commas",
            s.logging.level,
            LEVELS.join(", ")
        ),
    );
    errors
}

/// `http://` or `https://`, then something without spaces.
pub(crate) fn web_url(u: &str) -> bool {
    u.strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(' '))
}

pub(crate) fn is_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
        })
}

fn level_ok(filter: &str) -> bool {
    !filter.trim().is_empty()
        && filter.split(',').map(str::trim).all(|directive| {
            let level = directive.rsplit('=').next().unwrap_or(directive);
            let target_ok = match directive.split_once('=') {
                Some((target, _)) => {
                    !target.is_empty()
                        && target
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c))
                }
                None => true,
            };
            target_ok && LEVELS.contains(&level.to_ascii_lowercase().as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in ["127.0.0.1", "0.0.0.0", "::1", "localhost", "my-host.lan"] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in ["", "a b", "-x", "x..y", "http://x"] {
            assert!(!is_host(bad), "{bad}");
        }
    }

    #[test]
    fn levels() {
        for ok in [
            "info",
            "WARN",
            "mongars=debug,tower_http=info",
            "sqlx::query=warn",
            "info,llama-cpp-2=warn",
        ] {
            assert!(level_ok(ok), "{ok}");
        }
        for bad in ["", "loud", "mongars=", "=info", "a b=info"] {
            assert!(!level_ok(bad), "{bad}");
        }
    }
}
