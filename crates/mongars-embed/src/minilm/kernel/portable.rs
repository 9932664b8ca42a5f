//! The block kernel in plain Rust: the panel is taken in strips of 16
//! outputs whose sums the compiler keeps in vector registers (two AVX
//! registers or four NEON registers a row).

use super::{Block, PANEL};

/// Outputs per strip.
const STRIP: usize = 16;

/// `R` rows of `x` (each `k` long) against one packed panel.
#[inline(always)]
pub fn block<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
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
                    *sum = madd(a, *wv, *sum);
                }
            }
        }
        for (line, sums) in out.iter_mut().zip(&acc) {
            line[s * STRIP..(s + 1) * STRIP].copy_from_slice(sums);
        }
    }
    out
}

/// `a * b + c`, fused where the processor always has it.
#[inline(always)]
fn madd(a: f32, b: f32, c: f32) -> f32 {
    #[cfg(target_arch = "aarch64")]
    {
        a.mul_add(b, c)
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        a * b + c
    }
}

/// The same kernel compiled for AVX2 with FMA, for x86-64 without AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub fn block_avx2<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
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
                    *sum = a.mul_add(*wv, *sum);
                }
            }
        }
        for (line, sums) in out.iter_mut().zip(&acc) {
            line[s * STRIP..(s + 1) * STRIP].copy_from_slice(sums);
        }
    }
    out
}
