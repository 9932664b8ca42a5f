//! Rules for the generation backends, model profiles, metrics and telemetry.

use crate::settings::{EMBEDDED_BACKEND, RemoteKind, RoleSettings, Settings};

/// Push `(key, message)` for every broken rule.
pub(crate) fn validate(s: &Settings, check: &mut dyn FnMut(bool, &str, String)) {
    let llm = &s.llm;
    check(
        llm.profiles.contains_key(&llm.profile),
        "llm.profile",
        format!(
            "{:?} is not a profile; known: {}",
            llm.profile,
            llm.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    );
    let mut used = Vec::new();
    for (name, profile) in &llm.profiles {
        for (role, r) in [("general", &profile.general), ("coding", &profile.coding)] {
            let key = format!("llm.profiles.{name}.{role}");
            role_rules(s, &key, r, check);
            if *name == llm.profile {
                used.extend(r.backends.iter().cloned());
            }
        }
    }
    for (name, b) in &llm.backends {
        let key = format!("llm.backends.{name}");
        check(
            name != EMBEDDED_BACKEND,
            &key,
            "\"embedded\" is reserved for [llm.embedded]".into(),
        );
        check(
            name != crate::settings::PEERS_BACKEND,
            &key,
            "\"peers\" is reserved for [peers]".into(),
        );
        let urls = b.urls();
        if used.contains(name) {
            check(
                !urls.is_empty(),
                &format!("{key}.url"),
                format!("must be set: profile {:?} uses this backend", llm.profile),
            );
        }
        for u in &urls {
            check(
                crate::validate::web_url(u),
                &format!("{key}.url"),
                format!("{u:?} is not an http:// or https:// URL"),
            );
        }
        check(
            b.kind == RemoteKind::Ray || urls.len() <= 1,
            &format!("{key}.url"),
            "only Ray Serve backends take a comma-separated list".into(),
        );
        check(
            (256..=1 << 20).contains(&b.context_tokens),
            &format!("{key}.context_tokens"),
            "must be between 256 and 1048576".into(),
        );
        check(
            b.retries <= 10,
            &format!("{key}.retries"),
            "must be at most 10".into(),
        );
        check(
            (1..=10).contains(&b.scale_cycles),
            &format!("{key}.scale_cycles"),
            "must be between 1 and 10".into(),
        );
    }
    let r = &llm.resilience;
    check(
        r.connect_timeout_ms >= 1 && r.first_token_timeout_ms >= 1,
        "llm.resilience.first_token_timeout_ms",
        "timeouts must be at least 1 ms".into(),
    );
    check(
        r.first_token_timeout_ms <= r.total_timeout_ms,
        "llm.resilience.total_timeout_ms",
        "must be at least first_token_timeout_ms".into(),
    );
    check(
        r.retry_base_ms >= 1 && r.retry_base_ms <= r.retry_max_ms,
        "llm.resilience.retry_base_ms",
        "must be at least 1 and at most retry_max_ms".into(),
    );
    check(
        r.breaker_failures >= 1 && r.breaker_window_ms >= 1 && r.breaker_cooldown_ms >= 1,
        "llm.resilience.breaker_failures",
        "breaker_failures, breaker_window_ms and breaker_cooldown_ms must be at least 1".into(),
    );
    check(
        llm.cache.ttl_secs >= 1 && llm.cache.max_entries >= 1,
        "llm.cache.max_entries",
        "ttl_secs and max_entries must be at least 1".into(),
    );

    let m = &s.metrics;
    if !m.listen.is_empty() {
        match m.listen.parse::<std::net::SocketAddr>() {
            Ok(addr) => check(
                addr.ip().is_loopback() || m.scrape_token.is_set(),
                "metrics.listen",
                "a metrics listener on a non-loopback address needs metrics.scrape_token".into(),
            ),
            Err(_) => check(
                false,
                "metrics.listen",
                format!("{:?} is not an address like 127.0.0.1:9464", m.listen),
            ),
        }
    }
    let t = &s.telemetry;
    check(
        t.otlp_endpoint.is_empty() || crate::validate::web_url(&t.otlp_endpoint),
        "telemetry.otlp_endpoint",
        "must be empty or an http:// or https:// URL".into(),
    );
    check(
        ["http/protobuf", "http/json"].contains(&t.otlp_protocol.as_str()),
        "telemetry.otlp_protocol",
        "must be \"http/protobuf\" or \"http/json\"".into(),
    );
    check(
        (1..=3600).contains(&t.otlp_interval_secs),
        "telemetry.otlp_interval_secs",
        "must be between 1 and 3600".into(),
    );
}

fn role_rules(
    s: &Settings,
    key: &str,
    r: &RoleSettings,
    check: &mut dyn FnMut(bool, &str, String),
) {
    check(
        !r.backends.is_empty(),
        &format!("{key}.backends"),
        "must name at least one backend".into(),
    );
    for b in &r.backends {
        check(
            b == EMBEDDED_BACKEND
                || b == crate::settings::PEERS_BACKEND
                || s.llm.backends.contains_key(b),
            &format!("{key}.backends"),
            format!("{b:?} is neither \"embedded\", \"peers\" nor a name from [llm.backends]"),
        );
    }
    check(
        (0.0..=2.0).contains(&r.temperature),
        &format!("{key}.temperature"),
        "must be between 0 and 2".into(),
    );
    check(
        r.top_p > 0.0 && r.top_p <= 1.0,
        &format!("{key}.top_p"),
        "must be greater than 0 and at most 1".into(),
    );
    // An automatic embedded context is chosen with room for every role's
    // max_tokens, so only an explicit one can be too small.
    let embedded = match s.llm.embedded.context_tokens {
        0 => u32::MAX,
        n => n,
    };
    let window = r
        .backends
        .iter()
        .map(|b| match s.llm.backends.get(b) {
            Some(remote) => remote.context_tokens,
            None => embedded,
        })
        .min()
        .unwrap_or(embedded);
    check(
        r.max_tokens >= 1 && r.max_tokens < window,
        &format!("{key}.max_tokens"),
        format!(
            "must be at least 1 and less than the smallest context window of its backends ({window})"
        ),
    );
    check(
        r.stop.len() <= 4 && r.stop.iter().all(|s| !s.is_empty()),
        &format!("{key}.stop"),
        "at most 4 strings, none empty".into(),
    );
}
