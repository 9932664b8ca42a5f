//! Recently embedded texts and their vectors, so that a message seen again
//! ("thanks", "ok", a question asked twice) costs a lookup instead of a
//! forward pass. Bounded: past its capacity the least recently used eighth
//! is dropped at once, which keeps eviction cheap. Held in memory only;
//! texts longer than [`LONGEST`] bytes are never kept.

use std::collections::HashMap;
use std::sync::Mutex;

/// Texts above this many bytes are embedded every time: long texts rarely
/// repeat, and the cache should not hold documents.
pub const LONGEST: usize = 512;

struct Entry {
    vector: Vec<f32>,
    tokens: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Box<str>, Entry>,
    tick: u64,
}

pub struct VectorCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

impl VectorCache {
    /// A cache of at most `capacity` texts; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The vector and token count of `text`, when known.
    pub fn get(&self, text: &str) -> Option<(Vec<f32>, usize)> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        inner.map.get_mut(text).map(|e| {
            e.used = tick;
            (e.vector.clone(), e.tokens)
        })
    }

    pub fn put(&self, text: &str, vector: &[f32], tokens: usize) {
        if self.capacity == 0 || text.len() > LONGEST {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.tick += 1;
        let used = inner.tick;
        if inner.map.len() >= self.capacity && !inner.map.contains_key(text) {
            evict(&mut inner.map, self.capacity);
        }
        inner.map.insert(
            text.into(),
            Entry {
                vector: vector.to_vec(),
                tokens,
                used,
            },
        );
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }
}

/// Drop the least recently used eighth (at least one entry).
fn evict(map: &mut HashMap<Box<str>, Entry>, capacity: usize) {
    let drop = (capacity / 8).max(1).min(map.len());
    let mut ticks: Vec<u64> = map.values().map(|e| e.used).collect();
    let (_, cut, _) = ticks.select_nth_unstable(drop - 1);
    let cut = *cut;
    map.retain(|_, e| e.used > cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_it_was_given_and_forgets_the_least_recently_used() {
        let cache = VectorCache::new(8);
        for i in 0..8 {
            cache.put(&format!("text {i}"), &[i as f32], i);
        }
        assert_eq!(cache.get("text 3"), Some((vec![3.0], 3)));
        // "text 0" is now the oldest; "text 3" was just used.
        cache.put("text 8", &[8.0], 8);
        assert_eq!(cache.len(), 8);
        assert_eq!(cache.get("text 0"), None);
        assert!(cache.get("text 3").is_some());
        assert!(cache.get("text 8").is_some());
    }

    #[test]
    fn keeps_nothing_when_off_or_too_long() {
        let off = VectorCache::new(0);
        off.put("hello", &[1.0], 1);
        assert_eq!(off.get("hello"), None);
        let cache = VectorCache::new(4);
        let long = "x".repeat(LONGEST + 1);
        cache.put(&long, &[1.0], 1);
        assert_eq!(cache.get(&long), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn stays_bounded_under_many_distinct_texts() {
        let cache = VectorCache::new(64);
        for i in 0..10_000 {
            cache.put(&format!("message {i}"), &[0.0], 1);
            assert!(cache.len() <= 64);
        }
        assert!(cache.get("message 9999").is_some());
    }
}
