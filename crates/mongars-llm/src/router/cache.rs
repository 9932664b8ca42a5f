//! Response cache for deterministic requests (temperature 0): the same
//! role, messages and sampling give the same reply, so it is replayed
//! instead of generated. Entries expire after a TTL; beyond `max_entries`
//! the oldest goes. Sampled requests are never cached.

use mongars_core::domain::{GenerationRequest, GenerationUsage};
use mongars_core::ports::Clock;
use mongars_metrics::CacheMetrics;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub max_entries: usize,
}

struct Entry {
    text: String,
    usage: GenerationUsage,
    at: Instant,
}

pub struct ResponseCache {
    policy: CachePolicy,
    metrics: CacheMetrics,
    inner: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
    clock: Arc<dyn Clock>,
}

impl ResponseCache {
    pub fn new(policy: CachePolicy, metrics: CacheMetrics, clock: Arc<dyn Clock>) -> Self {
        Self {
            policy,
            metrics,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            clock,
        }
    }

    /// The cache key, or `None` when the request may not be cached.
    pub fn key(request: &GenerationRequest) -> Option<String> {
        let s = &request.sampling;
        if s.temperature != 0.0 {
            return None;
        }
        let mut key = format!(
            "{}|{}|{:?}|{:?}|",
            request.role, s.max_tokens, s.stop, s.seed
        );
        for m in &request.messages {
            key.push_str(m.role.as_str());
            key.push('\u{1f}');
            key.push_str(&m.content);
            key.push('\u{1e}');
        }
        Some(key)
    }

    pub fn get(&self, key: &str) -> Option<(String, GenerationUsage)> {
        let now = self.clock.instant();
        let mut guard = self.inner.lock().ok()?;
        let (map, _) = &mut *guard;
        let hit = match map.get(key) {
            Some(e) if now.saturating_duration_since(e.at) < self.policy.ttl => {
                Some((e.text.clone(), e.usage.clone()))
            }
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        };
        let result = if hit.is_some() { "hit" } else { "miss" };
        self.metrics.requests.with_label_values(&[result]).inc();
        self.metrics.entries.set(map.len() as i64);
        hit
    }

    pub fn put(&self, key: String, text: String, usage: GenerationUsage) {
        let at = self.clock.instant();
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        let (map, order) = &mut *guard;
        if map.len() >= self.policy.max_entries && !map.contains_key(&key) {
            while let Some(old) = order.pop_front() {
                if map.remove(&old).is_some() {
                    break;
                }
            }
        }
        if map.insert(key.clone(), Entry { text, usage, at }).is_none() {
            order.push_back(key);
        }
        self.metrics.entries.set(map.len() as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongars_core::domain::{
        ChatMessage, ChatRole, FinishReason, GenerationRequest, SamplingParams,
    };
    use mongars_core::ports::ManualClock;
    use mongars_metrics::Metrics;

    fn req(text: &str, temperature: f32) -> GenerationRequest {
        let mut s = SamplingParams::greedy(16);
        s.temperature = temperature;
        GenerationRequest::classified(vec![ChatMessage::new(ChatRole::User, text)], s)
    }

    fn usage() -> GenerationUsage {
        GenerationUsage {
            model: "m".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            finish_reason: FinishReason::Stop,
            mean_logprob: None,
            time_to_first_token: Duration::ZERO,
            queued: Duration::ZERO,
            total: Duration::ZERO,
        }
    }

    #[test]
    fn only_deterministic_requests_have_keys() {
        assert!(ResponseCache::key(&req("a", 0.0)).is_some());
        assert!(ResponseCache::key(&req("a", 0.7)).is_none());
        assert_ne!(
            ResponseCache::key(&req("a", 0.0)),
            ResponseCache::key(&req("b", 0.0))
        );
    }

    #[test]
    fn bounded_expiring_and_counted() {
        let m = Metrics::new();
        let clock = Arc::new(ManualClock::new());
        clock.freeze();
        let c = ResponseCache::new(
            CachePolicy {
                ttl: Duration::from_millis(50),
                max_entries: 2,
            },
            m.cache.clone(),
            clock.clone(),
        );
        for k in ["a", "b", "c"] {
            c.put(k.into(), k.into(), usage());
        }
        assert!(c.get("a").is_none(), "oldest evicted");
        assert_eq!(c.get("c").map(|x| x.0), Some("c".into()));
        clock.advance(Duration::from_millis(50));
        assert!(c.get("c").is_none(), "expired");
        let text = m.render();
        assert!(text.contains("mongars_llm_cache_requests_total{result=\"hit\"} 1"));
        assert!(text.contains("mongars_llm_cache_requests_total{result=\"miss\"} 2"));
    }
}
