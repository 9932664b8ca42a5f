//! The block kernel in plain Rust, for processors without a written one
//! (NEON on arm64, x86-64 without AVX2): the panel is taken in strips of 16
//! outputs whose sums the compiler keeps in vector registers (four NEON
//! registers a row on arm64).

use super::{Block, PANEL};

/// Outputs per strip.
const STRIP: usize = 16;

/// `R` rows of `x` (each `k` long) against one packed panel.
#[inline(always)]
pub fn block<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
    strips::<R, { cfg!(target_arch = "aarch64") }>(x, k, panel)
}

/// The kernel's loops; `FUSED` where the processor has fused multiply-add
/// (without it, `mul_add` would be a library call per product).
#[inline(always)]
fn strips<const R: usize, const FUSED: bool>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
    let mut out = [[0f32; PANEL]; R];
    for s in 0..PANEL / STRIP {
        let mut acc = [[0f32; STRIP]; R];
        for (kk, line) in panel.chunks_exact(PANEL).enumerate().take(k) {
            let w: &[f32; STRIP] = line[s * STRIP..(s + 1) * STRIP]
                .try_into()
                .expect("a strip is STRIP wide");
            for (r, sums) in acc.iter_mut().enumerate() {
                let a = x[r * k + kk];
                for (sum, wv) in sums.iter_mut().zip(w) {
                    *sum = if FUSED {
                        a.mul_add(*wv, *sum)
                    } else {
                        a * *wv + *sum
                    };
                }
            }
        }
        for (line, sums) in out.iter_mut().zip(&acc) {
            line[s * STRIP..(s + 1) * STRIP].copy_from_slice(sums);
        }
    }
    out
}
