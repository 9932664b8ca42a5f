//! Rules for memory, embeddings and research.

use crate::settings::{EmbedderKind, Settings};

use crate::validate::web_url as http_url;

/// Push `(key, message)` for every broken rule.
pub(crate) fn validate(s: &Settings, check: &mut dyn FnMut(bool, &str, String)) {
    let m = &s.memory;
    let similarity = |x: f32| (-1.0..=1.0).contains(&x);
    check(
        similarity(m.min_similarity),
        "memory.min_similarity",
        "must be between -1 and 1".into(),
    );
    check(
        m.dedup_similarity > 0.0 && m.dedup_similarity <= 1.0,
        "memory.dedup_similarity",
        "must be above 0 and at most 1".into(),
    );
    check(
        (1..=50).contains(&m.recall_k),
        "memory.recall_k",
        "must be between 1 and 50".into(),
    );
    check(
        m.core_facts <= 200,
        "memory.core_facts",
        "must be at most 200".into(),
    );
    check(
        m.recall_max_tokens >= 16,
        "memory.recall_max_tokens",
        "must be at least 16".into(),
    );
    check(
        m.index_cache_users >= 1,
        "memory.index_cache_users",
        "must be at least 1".into(),
    );
    check(
        m.purge_interval_secs >= 1,
        "memory.purge_interval_secs",
        "must be at least 1".into(),
    );
    check(
        (1..=10_000).contains(&m.working.max_turns),
        "memory.working.max_turns",
        "must be between 1 and 10000".into(),
    );
    check(
        m.working.ttl_secs >= 60,
        "memory.working.ttl_secs",
        "must be at least 60".into(),
    );

    let e = &s.embeddings;
    check(
        (8..=512).contains(&e.max_tokens),
        "embeddings.max_tokens",
        "must be between 8 and 512".into(),
    );
    check(
        e.batch_size <= 256,
        "embeddings.batch_size",
        "must be between 0 (chosen for the machine) and 256".into(),
    );
    check(
        e.cache_entries <= 1_000_000,
        "embeddings.cache_entries",
        "must be between 0 (none) and 1000000".into(),
    );
    check(
        e.timeout_ms >= 100,
        "embeddings.timeout_ms",
        "must be at least 100".into(),
    );
    if e.kind != EmbedderKind::Embedded {
        check(
            http_url(&e.url),
            "embeddings.url",
            "must be an http:// or https:// URL for a remote embedder".into(),
        );
        check(
            !e.model.is_empty(),
            "embeddings.model",
            "must name the model for a remote embedder".into(),
        );
        check(
            (8..=8192).contains(&e.dimensions),
            "embeddings.dimensions",
            "must be between 8 and 8192".into(),
        );
    }

    let r = &s.research;
    for (key, url) in [
        ("research.searxng_url", &r.searxng_url),
        ("research.documents_url", &r.documents_url),
    ] {
        check(
            url.is_empty() || http_url(url),
            key,
            "must be empty or an http:// or https:// URL".into(),
        );
    }
    check(
        !r.enabled || !r.searxng_url.is_empty() || !r.documents_url.is_empty(),
        "research.enabled",
        "research is enabled but neither searxng_url nor documents_url is set".into(),
    );
    check(
        (1..=20).contains(&r.max_results),
        "research.max_results",
        "must be between 1 and 20".into(),
    );
    check(
        r.provider_timeout_ms >= 100,
        "research.provider_timeout_ms",
        "must be at least 100".into(),
    );
    check(
        r.page_timeout_ms >= 100,
        "research.page_timeout_ms",
        "must be at least 100".into(),
    );
    check(
        r.max_page_bytes >= 1024,
        "research.max_page_bytes",
        "must be at least 1024".into(),
    );
    check(
        similarity(r.gap_similarity),
        "research.gap_similarity",
        "must be between -1 and 1".into(),
    );
    check(
        !r.user_agent.trim().is_empty(),
        "research.user_agent",
        "must not be empty".into(),
    );
}
