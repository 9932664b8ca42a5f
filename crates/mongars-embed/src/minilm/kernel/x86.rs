//! The block kernel for x86-64 processors with AVX-512 (and an AVX2 with
//! FMA form of the portable one), chosen at run time.
//!
//! Six rows of four 16-wide sums are 24 of the 32 vector registers; each
//! input step loads the panel's 64 weights once and broadcasts one value of
//! each row, so the fused multiply-adds, not the loads, set the pace.
#![allow(unsafe_code)] // processor intrinsics behind a run-time check

use super::{Block, PANEL, portable};
use std::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

/// The block on this processor's widest kernel, `None` when it has neither
/// AVX-512 nor AVX2 with FMA.
#[inline(always)]
pub fn block<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Option<Block<R>> {
    assert!(x.len() >= R * k && panel.len() >= k * PANEL);
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the processor has AVX-512F (checked above) and the slices
        // are long enough for every read (asserted above).
        return Some(unsafe { block_avx512::<R>(x, k, panel) });
    }
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has AVX2 and FMA (checked above).
        return Some(unsafe { portable::block_avx2::<R>(x, k, panel) });
    }
    None
}

/// # Safety
/// The processor must have AVX-512F; `x` must hold `R * k` values and
/// `panel` `k * PANEL`.
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
    let w = panel.as_ptr();
    // SAFETY: `rows_avx512` asks only for the 16 values at offsets below
    // k * PANEL, inside the panel.
    unsafe { rows_avx512::<R>(x, k, |at| _mm512_loadu_ps(w.add(at))) }
}

/// `R` rows of `x` against a panel whose 16 weights at offset `at` (in
/// weights from the panel's start) `load(at)` gives as f32 lanes: six rows
/// of four 16-wide sums in registers, each input step loading the line's 64
/// weights once. The panel's storage is the caller's.
///
/// # Safety
/// The processor must have AVX-512F, `x` must hold `R * k` values, and
/// `load` must be sound for every `at = kk * PANEL + 16 * j` with `kk < k`
/// and `j < 4`.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn rows_avx512<const R: usize>(
    x: &[f32],
    k: usize,
    load: impl Fn(usize) -> __m512,
) -> Block<R> {
    assert!(x.len() >= R * k);
    let mut acc: [[__m512; 4]; R] = [[_mm512_setzero_ps(); 4]; R];
    let xs = x.as_ptr();
    for kk in 0..k {
        let at = kk * PANEL;
        let (w0, w1, w2, w3) = (load(at), load(at + 16), load(at + 32), load(at + 48));
        for (r, sums) in acc.iter_mut().enumerate() {
            // SAFETY: r * k + kk < R * k, inside x (asserted above).
            let a = _mm512_set1_ps(unsafe { *xs.add(r * k + kk) });
            sums[0] = _mm512_fmadd_ps(a, w0, sums[0]);
            sums[1] = _mm512_fmadd_ps(a, w1, sums[1]);
            sums[2] = _mm512_fmadd_ps(a, w2, sums[2]);
            sums[3] = _mm512_fmadd_ps(a, w3, sums[3]);
        }
    }
    let mut out = [[0f32; PANEL]; R];
    for (line, sums) in out.iter_mut().zip(&acc) {
        for (i, v) in sums.iter().enumerate() {
            // SAFETY: each store writes 16 values inside a 64-value line.
            unsafe { _mm512_storeu_ps(line.as_mut_ptr().add(16 * i), *v) };
        }
    }
    out
}
