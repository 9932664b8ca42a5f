//! An in-process vector index of one user's memories: int8 codes with a
//! scale per vector (a quarter of the f32 size), scanned exhaustively.
//!
//! A search scores every vector with an int8 × int8 dot product (which the
//! compiler vectorises), keeps the best few times `k`, then re-scores those
//! with the float query against the stored codes and returns the top `k`.
//! Large indexes are scanned on two threads. Measured figures (speed and
//! recall against exact float search) come from `mongars bench memory`.

use crate::domain::MemoryKind;
use std::collections::HashMap;

/// One search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub kind: MemoryKind,
    /// Cosine similarity with the query, -1..1.
    pub score: f32,
}

/// Indexes this large are scanned in two halves on two threads.
const PARALLEL_FROM: usize = 16_384;

#[derive(Debug, Clone)]
pub struct VectorIndex {
    dims: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    ids: Vec<String>,
    kinds: Vec<MemoryKind>,
    slots: HashMap<String, usize>,
}

impl VectorIndex {
    pub fn new(dims: usize) -> Self {
        Self {
            dims,
            codes: Vec::new(),
            scales: Vec::new(),
            ids: Vec::new(),
            kinds: Vec::new(),
            slots: HashMap::new(),
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Bytes held by codes and scales.
    pub fn vector_bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * 4
    }

    /// Add or replace the vector of `id`. Vectors of the wrong length are
    /// ignored (they cannot come from this index's model).
    pub fn upsert(&mut self, id: &str, kind: MemoryKind, vector: &[f32]) {
        if vector.len() != self.dims {
            return;
        }
        let (code, scale) = quantize(vector);
        match self.slots.get(id) {
            Some(&i) => {
                self.codes[i * self.dims..(i + 1) * self.dims].copy_from_slice(&code);
                self.scales[i] = scale;
                self.kinds[i] = kind;
            }
            None => {
                self.slots.insert(id.to_string(), self.ids.len());
                self.codes.extend_from_slice(&code);
                self.scales.push(scale);
                self.ids.push(id.to_string());
                self.kinds.push(kind);
            }
        }
    }

    /// Remove `id`; false when it was not there.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(i) = self.slots.remove(id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        if i != last {
            let d = self.dims;
            let (head, tail) = self.codes.split_at_mut(last * d);
            head[i * d..(i + 1) * d].copy_from_slice(&tail[..d]);
            self.slots.insert(self.ids[last].clone(), i);
        }
        self.codes.truncate(last * self.dims);
        self.scales.swap_remove(i);
        self.ids.swap_remove(i);
        self.kinds.swap_remove(i);
        true
    }

    /// The `k` most similar vectors of the wanted kinds with a score of at
    /// least `min_score`, best first.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        min_score: f32,
        kinds: &[MemoryKind],
    ) -> Vec<Hit> {
        if k == 0 || self.is_empty() || query.len() != self.dims {
            return Vec::new();
        }
        let (qcode, qscale) = quantize(query);
        let keep = (k * 4).max(32);
        let n = self.len();
        let scan = |range: std::ops::Range<usize>| self.scan(&qcode, qscale, range, keep, kinds);
        let mut candidates = if n >= PARALLEL_FROM && parallel() {
            let mid = n / 2;
            std::thread::scope(|s| {
                let other = s.spawn(|| scan(mid..n));
                let mut first = scan(0..mid);
                first.extend(other.join().unwrap_or_default());
                first
            })
        } else {
            scan(0..n)
        };
        // Re-score the candidates with the unquantised query.
        for c in &mut candidates {
            let code = &self.codes[c.1 * self.dims..(c.1 + 1) * self.dims];
            let s: f32 = code
                .iter()
                .zip(query)
                .map(|(&a, &b)| f32::from(a) * b)
                .sum();
            c.0 = s * self.scales[c.1];
        }
        candidates.retain(|c| c.0 >= min_score);
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        candidates.truncate(k);
        candidates
            .into_iter()
            .map(|(score, i)| Hit {
                id: self.ids[i].clone(),
                kind: self.kinds[i],
                score: score.clamp(-1.0, 1.0),
            })
            .collect()
    }

    /// The best `keep` of `range` by approximate score, unordered.
    fn scan(
        &self,
        q: &[i8],
        qscale: f32,
        range: std::ops::Range<usize>,
        keep: usize,
        kinds: &[MemoryKind],
    ) -> Vec<(f32, usize)> {
        let all_kinds = kinds.len() >= 2;
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(keep + 1);
        let mut floor = f32::NEG_INFINITY;
        for i in range {
            if !all_kinds && !kinds.contains(&self.kinds[i]) {
                continue;
            }
            let code = &self.codes[i * self.dims..(i + 1) * self.dims];
            let score = dot_i8(q, code) as f32 * qscale * self.scales[i];
            if best.len() < keep {
                best.push((score, i));
                if best.len() == keep {
                    floor = min_of(&best).0;
                }
            } else if score > floor {
                let (_, at) = min_of(&best);
                best[at] = (score, i);
                floor = min_of(&best).0;
            }
        }
        best
    }
}

/// More than one CPU to scan on. Asked once: the answer reads cgroup files.
fn parallel() -> bool {
    static MANY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *MANY.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// The smallest score in `v` and its position.
fn min_of(v: &[(f32, usize)]) -> (f32, usize) {
    v.iter().enumerate().fold(
        (f32::INFINITY, 0),
        |acc, (at, &(s, _))| {
            if s < acc.0 { (s, at) } else { acc }
        },
    )
}

/// Symmetric int8 quantisation: `v ≈ code * scale`.
pub fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    let code = v
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (code, scale)
}

/// Integer dot product, in blocks the compiler turns into SIMD.
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..16 {
            acc[j] += i32::from(x[j]) * i32::from(y[j]);
        }
    }
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    acc.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{dot, normalize};

    fn unit(seed: u64, dims: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut v: Vec<f32> = (0..dims)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        normalize(&mut v);
        v
    }

    #[test]
    fn finds_what_exact_search_finds() {
        let dims = 64;
        let mut index = VectorIndex::new(dims);
        let vectors: Vec<Vec<f32>> = (0..2000).map(|i| unit(i, dims)).collect();
        for (i, v) in vectors.iter().enumerate() {
            index.upsert(&format!("m{i}"), MemoryKind::Fact, v);
        }
        let mut agree = 0;
        for q in 0..20 {
            let query = unit(10_000 + q, dims);
            let mut exact: Vec<(f32, usize)> = vectors
                .iter()
                .enumerate()
                .map(|(i, v)| (dot(v, &query), i))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let got = index.search(&query, 10, -1.0, &[MemoryKind::Fact]);
            assert_eq!(got.len(), 10);
            for (e, _) in exact.iter().take(10).zip(&got) {
                if got.iter().any(|h| h.id == format!("m{}", e.1)) {
                    agree += 1;
                }
            }
            assert!((got[0].score - exact[0].0).abs() < 0.02);
        }
        assert!(agree >= 190, "recall@10 {agree}/200");
    }

    #[test]
    fn upsert_replace_remove_and_filters() {
        let mut index = VectorIndex::new(8);
        let a = unit(1, 8);
        let b = unit(2, 8);
        index.upsert("a", MemoryKind::Fact, &a);
        index.upsert("b", MemoryKind::Turn, &b);
        index.upsert("bad", MemoryKind::Fact, &[1.0]);
        assert_eq!(index.len(), 2);
        let hit = &index.search(&a, 1, 0.0, &[MemoryKind::Fact, MemoryKind::Turn])[0];
        assert_eq!(hit.id, "a");
        assert!(hit.score > 0.99);
        assert!(
            index
                .search(&b, 5, 0.5, &[MemoryKind::Fact])
                .iter()
                .all(|h| h.id != "b")
        );
        index.upsert("a", MemoryKind::Fact, &b);
        assert_eq!(index.len(), 2);
        assert!(index.search(&a, 5, 0.99, &[MemoryKind::Fact]).is_empty());
        assert!(index.remove("a"));
        assert!(!index.remove("a"));
        assert_eq!(index.len(), 1);
        assert_eq!(index.search(&b, 5, 0.9, &[MemoryKind::Turn])[0].id, "b");
        index.upsert("c", MemoryKind::Fact, &a);
        assert_eq!(index.search(&a, 1, 0.9, &[MemoryKind::Fact])[0].id, "c");
    }

    #[test]
    fn integer_dot_products() {
        let a: Vec<i8> = (0..37).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..37).map(|i| (i * 13 % 255 - 127) as i8).collect();
        let want: i32 = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| i32::from(x) * i32::from(y))
            .sum();
        assert_eq!(dot_i8(&a, &b), want);
        assert_eq!(quantize(&[0.0, 0.0]).1, 0.0);
    }
}
