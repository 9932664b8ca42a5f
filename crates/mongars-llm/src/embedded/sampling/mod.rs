//! Choosing each next token from a sequence's logits, with its
//! log-probability, straight from llama.cpp's output buffer.
//!
//! llama.cpp's samplers first copy every logit of the vocabulary into an
//! array of candidates (49,152 for the default model) and work on that:
//! about 0.3 ms a token on two cores even for greedy decoding, a tenth of
//! a batched step's time at eight replies. The engine reads the logits in
//! place instead:
//! - greedy (temperature 0): the largest logit, the first one on a tie, as
//!   llama.cpp's greedy sampler picks;
//! - otherwise the same chain the engine always used (top-k 40, then
//!   top-p over those at temperature 1, then the temperature, then a draw),
//!   over the 40 best kept in one pass, so only they are ever sorted. A
//!   request's seed makes the draws repeatable; without one each reply
//!   draws its own.
//!
//! The log-probability (under the raw logits, every token counted) reuses
//! the largest logit found while choosing.

use super::logprob::{lane_max, logprob_under_max};
use mongars_core::domain::SamplingParams;

/// Candidates kept before top-p, as llama.cpp's `top_k(40)` did.
pub(crate) const TOP_K: usize = 40;

/// How one reply picks its tokens.
pub(crate) struct Sampler {
    mode: Mode,
    rng: SplitMix64,
    /// The kept candidates, reused from token to token.
    best: Vec<(f32, u32)>,
}

enum Mode {
    Greedy,
    Random { top_p: f32, temperature: f32 },
}

/// A chosen token and its natural-log probability under the raw logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Choice {
    pub token: u32,
    pub logprob: f64,
}

impl Sampler {
    pub fn new(p: &SamplingParams) -> Self {
        let mode = if p.temperature > 0.0 && p.temperature.is_finite() {
            Mode::Random {
                top_p: if p.top_p.is_nan() {
                    1.0
                } else {
                    p.top_p.clamp(0.01, 1.0)
                },
                temperature: p.temperature,
            }
        } else {
            Mode::Greedy
        };
        let seed = p.seed.map_or_else(random_seed, u64::from);
        Self {
            mode,
            rng: SplitMix64(seed),
            best: Vec::with_capacity(TOP_K),
        }
    }

    /// The next token from `logits` (one per vocabulary entry).
    pub fn choose(&mut self, logits: &[f32]) -> Choice {
        let (token, max) = match self.mode {
            Mode::Greedy => {
                let max = lane_max(logits);
                let token = logits.iter().position(|&x| x == max).unwrap_or(0);
                (token, max)
            }
            Mode::Random { top_p, temperature } => {
                top_k(logits, TOP_K, &mut self.best);
                let Some(&(max, _)) = self.best.first() else {
                    return Choice {
                        token: 0,
                        logprob: f64::NEG_INFINITY,
                    };
                };
                let kept = nucleus(&self.best, top_p);
                let at = draw(&self.best[..kept], temperature, self.rng.next_unit());
                (self.best[at].1 as usize, max)
            }
        };
        Choice {
            token: token as u32,
            logprob: logprob_under_max(logits, token, max),
        }
    }
}

/// The `k` largest finite logits with their tokens, largest first (the
/// lower token first on a tie), into `best`.
pub(crate) fn top_k(logits: &[f32], k: usize, best: &mut Vec<(f32, u32)>) {
    best.clear();
    if k == 0 {
        return;
    }
    // Fill with the first k candidates (NaN and negative infinity never
    // are), then replace the smallest kept whenever a larger one comes.
    let mut rest = logits.len();
    for (i, &x) in logits.iter().enumerate() {
        if x > f32::NEG_INFINITY {
            best.push((x, i as u32));
            if best.len() == k {
                rest = i + 1;
                break;
            }
        }
    }
    if best.len() == k {
        let mut floor = lowest(best);
        for (i, &x) in logits.iter().enumerate().skip(rest) {
            // False for NaN and for anything not above the smallest kept.
            if x > floor.0 {
                best[floor.1] = (x, i as u32);
                floor = lowest(best);
            }
        }
    }
    best.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
}

/// The smallest value of `best` and its index (the later token on a tie,
/// so that an earlier one is kept).
fn lowest(best: &[(f32, u32)]) -> (f32, usize) {
    let mut at = 0;
    for (i, c) in best.iter().enumerate().skip(1) {
        let low = best[at];
        if c.0 < low.0 || (c.0 == low.0 && c.1 > low.1) {
            at = i;
        }
    }
    (best[at].0, at)
}

/// How many of `sorted` (largest first) make up probability `p` at
/// temperature 1, at least one: llama.cpp's `top_p(p, 1)`.
pub(crate) fn nucleus(sorted: &[(f32, u32)], p: f32) -> usize {
    let weights = weights(sorted, 1.0);
    let total: f64 = weights.iter().sum();
    let mut cumulative = 0.0;
    for (i, w) in weights.iter().enumerate() {
        cumulative += w / total;
        if cumulative >= f64::from(p) {
            return i + 1;
        }
    }
    sorted.len()
}

/// Index of the candidate drawn from `kept` (largest first) at
/// `temperature`, with `u` uniform in [0, 1).
pub(crate) fn draw(kept: &[(f32, u32)], temperature: f32, u: f64) -> usize {
    let weights = weights(kept, temperature);
    let mut target = u * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i;
        }
        target -= w;
    }
    kept.len().saturating_sub(1)
}

/// The unnormalised softmax weights of `sorted` (largest first) at
/// `temperature`: 1 for the first, exp((x - max) / temperature) for each.
fn weights(sorted: &[(f32, u32)], temperature: f32) -> Vec<f64> {
    let Some(&(max, _)) = sorted.first() else {
        return Vec::new();
    };
    let t = f64::from(temperature);
    sorted
        .iter()
        .map(|c| (f64::from(c.0 - max) / t).exp())
        .collect()
}

/// A seed no other reply is likely to share.
fn random_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ u64::from(std::process::id()).rotate_left(32)
    })
}

/// Sebastiano Vigna's SplitMix64: small, fast and well mixed, which is all
/// a sampler needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    fn next_unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;
