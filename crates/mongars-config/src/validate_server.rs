//! Rules for the listener: limits on connections, time and hosts, and how
//! the request timeout bounds the generation timeouts inside it.

use crate::settings::Settings;

pub(crate) fn validate(s: &Settings, check: &mut dyn FnMut(bool, &str, String)) {
    let v = &s.server;
    check(
        crate::validate::is_host(&v.host),
        "server.host",
        format!("{:?} is not an IP address or host name", v.host),
    );
    check(
        v.body_limit_bytes >= 1024,
        "server.body_limit_bytes",
        "must be at least 1024".into(),
    );
    check(
        v.request_timeout_secs >= 1,
        "server.request_timeout_secs",
        "must be at least 1".into(),
    );
    check(
        (1..=300).contains(&v.header_read_timeout_secs),
        "server.header_read_timeout_secs",
        "must be between 1 and 300".into(),
    );
    check(
        v.idle_timeout_secs > v.request_timeout_secs
            && v.idle_timeout_secs > s.realtime.ping_interval_secs,
        "server.idle_timeout_secs",
        format!(
            "must be longer than server.request_timeout_secs ({}) and \
             realtime.ping_interval_secs ({}): a connection waiting for its reply \
             or between pings is not idle",
            v.request_timeout_secs, s.realtime.ping_interval_secs
        ),
    );
    check(
        v.max_connections == 0 || v.max_connections >= 16,
        "server.max_connections",
        "must be 0 (derived from the open-file limit) or at least 16".into(),
    );
    let vault = &s.vault;
    if !vault.address.is_empty() {
        check(
            vault.address.starts_with("https://") || vault.address.starts_with("http://"),
            "vault.address",
            "must be an http:// or https:// URL".into(),
        );
        check(
            !vault.token_file.as_os_str().is_empty() || !vault.kubernetes_role.is_empty(),
            "vault.token_file",
            "Vault needs vault.token_file or vault.kubernetes_role".into(),
        );
        check(
            !vault.mount.is_empty() && !vault.path.is_empty(),
            "vault.path",
            "vault.mount and vault.path must name the secret".into(),
        );
        check(
            (1..=20).contains(&vault.attempts) && vault.timeout_ms >= 100,
            "vault.attempts",
            "attempts must be 1 to 20 and timeout_ms at least 100".into(),
        );
    }
    check(
        v.worker_threads <= 1024,
        "server.worker_threads",
        "must be between 0 (one per usable CPU) and 1024".into(),
    );
    for host in &v.allowed_hosts {
        check(
            host_pattern_ok(host),
            "server.allowed_hosts",
            format!(
                "{host:?} is not a host name, \".domain\" (any name under it), an IP address or \"*\""
            ),
        );
    }
    // A turn must end before its request does: a backend that never answers
    // is given up on (and the turn failed) before the client is told 504.
    let r = &s.llm.resilience;
    check(
        r.first_token_timeout_ms < v.request_timeout_secs.saturating_mul(1000),
        "llm.resilience.first_token_timeout_ms",
        format!(
            "must be shorter than server.request_timeout_secs ({} s), so that a silent \
             backend is abandoned before the request times out",
            v.request_timeout_secs
        ),
    );
    check(
        r.inter_token_timeout_ms >= 1 && r.inter_token_timeout_ms <= r.total_timeout_ms,
        "llm.resilience.inter_token_timeout_ms",
        "must be at least 1 and at most total_timeout_ms".into(),
    );
}

/// `*`, an IP address, a host name, or `.domain` for every name under it.
fn host_pattern_ok(p: &str) -> bool {
    if p == "*" {
        return true;
    }
    let name = p.strip_prefix('.').unwrap_or(p);
    let unbracketed = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    crate::validate::is_host(unbracketed)
}

#[cfg(test)]
mod tests {
    use super::host_pattern_ok;

    #[test]
    fn host_patterns() {
        for ok in [
            "*",
            "chat.example.com",
            ".example.com",
            "10.0.0.5",
            "[::1]",
            "mongars",
        ] {
            assert!(host_pattern_ok(ok), "{ok}");
        }
        for bad in ["", "http://x", "a b", "x:8000", "*.example.com", "."] {
            assert!(!host_pattern_ok(bad), "{bad}");
        }
    }
}
