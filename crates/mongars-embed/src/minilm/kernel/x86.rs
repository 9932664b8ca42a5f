//! The block kernels for x86-64 processors with AVX-512 or with AVX2 and
//! FMA, chosen at run time.
//!
//! AVX-512: six rows of four 16-wide sums are 24 of the 32 vector
//! registers; each input step loads the panel's 64 weights once and
//! broadcasts one value of each row, so the fused multiply-adds, not the
//! loads, set the pace.
//!
//! AVX2 has 16 registers of 8 lanes, too few for a whole 64-wide line of
//! several rows, so the panel is taken in strips: 16 outputs for four to six
//! rows (twelve sums), 32 for two or three, the whole line for one. Every
//! block keeps at least eight independent sums, enough to cover the
//! multiply-add's latency. Written out with intrinsics: the portable loops
//! compiled for AVX2 kept only the first strip's sums in registers and
//! moved the others through the stack at every step (about 40 % of the
//! processor's multiply-add rate).
//!
//! A strip reads one cache line of each input step's 64 weights, so the
//! first strip walks the panel at a stride of several lines, a pattern the
//! processor's own prefetchers fetch from memory at about a third of the
//! rate they stream a sequential read (weights of one sentence's products do
//! not stay in cache between sentences). The first strip therefore asks for
//! the whole line [`AHEAD`] input steps ahead, and the strips after it find
//! the panel in cache: one sentence in f32 embeds about 1.3 times as fast
//! where memory, not arithmetic, sets the pace (decision 0012).
#![allow(unsafe_code)] // processor intrinsics behind a run-time check

use super::{Block, PANEL};
use std::arch::x86_64::{
    __m256, __m512, _MM_HINT_T0, _mm_prefetch, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps,
    _mm256_setzero_ps, _mm256_storeu_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps,
    _mm512_setzero_ps, _mm512_storeu_ps,
};

/// Input steps between the line the first AVX2 strip reads and the one it
/// asks the cache for.
const AHEAD: usize = 4;

/// Asks for the `bytes` bytes from `p` on to be brought into the cache, a
/// line at a time. A hint: it reads nothing and cannot fault, and `p` is
/// only ever offset with wrapping arithmetic.
#[inline(always)]
pub(super) fn prefetch<T>(p: *const T, bytes: usize) {
    for offset in (0..bytes).step_by(64) {
        // SAFETY: a prefetch reads no memory and does not fault, whatever
        // the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>().wrapping_add(offset)) };
    }
}

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
        return Some(unsafe { block_avx2::<R>(x, k, panel) });
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
    // SAFETY: the processor has AVX-512F (the caller's contract).
    unsafe { store_avx512(&acc) }
}

/// A register block's sums, four 16-wide registers per row, as a block.
///
/// # Safety
/// The processor must have AVX-512F.
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store_avx512<const R: usize>(acc: &[[__m512; 4]; R]) -> Block<R> {
    let mut out = [[0f32; PANEL]; R];
    for (line, sums) in out.iter_mut().zip(acc) {
        for (i, v) in sums.iter().enumerate() {
            // SAFETY: each store writes 16 values inside a 64-value line.
            unsafe { _mm512_storeu_ps(line.as_mut_ptr().add(16 * i), *v) };
        }
    }
    out
}

/// # Safety
/// The processor must have AVX2 and FMA; `x` must hold `R * k` values and
/// `panel` `k * PANEL`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
    let w = panel.as_ptr();
    // SAFETY: `rows_avx2` asks only for the 8 values at offsets below
    // k * PANEL, inside the panel.
    unsafe {
        rows_avx2::<R>(
            x,
            k,
            |at| _mm256_loadu_ps(w.add(at)),
            |at| prefetch(w.wrapping_add(at), PANEL * 4),
        )
    }
}

/// `R` rows of `x` against a panel whose 8 weights at offset `at` (in
/// weights from the panel's start) `load(at)` gives as f32 lanes, in strips
/// as wide as the row count leaves registers for. `ahead(at)` asks for the
/// whole line of weights from offset `at` on (`at = kk * PANEL`) to be
/// brought into the cache.
///
/// # Safety
/// The processor must have AVX2 and FMA, `x` must hold `R * k` values, and
/// `load` must be sound for every `at = kk * PANEL + 8 * j` with `kk < k`
/// and `j < 8`.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(super) unsafe fn rows_avx2<const R: usize>(
    x: &[f32],
    k: usize,
    load: impl Fn(usize) -> __m256,
    ahead: impl Fn(usize),
) -> Block<R> {
    assert!(x.len() >= R * k);
    let mut out = [[0f32; PANEL]; R];
    // SAFETY: the strips' contracts are this function's.
    unsafe {
        match R {
            1 => strips_avx2::<R, 8>(x, k, &load, &ahead, &mut out),
            2 | 3 => strips_avx2::<R, 4>(x, k, &load, &ahead, &mut out),
            _ => strips_avx2::<R, 2>(x, k, &load, &ahead, &mut out),
        }
    }
    out
}

/// The panel in strips of `V` vectors (`8 * V` outputs): `R * V` sums in
/// registers for one strip at a time, stored before the next begins. The
/// first strip asks for the lines [`AHEAD`] input steps on.
///
/// # Safety
/// As [`rows_avx2`].
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn strips_avx2<const R: usize, const V: usize>(
    x: &[f32],
    k: usize,
    load: &impl Fn(usize) -> __m256,
    ahead: &impl Fn(usize),
    out: &mut Block<R>,
) {
    let xs = x.as_ptr();
    for s in (0..PANEL).step_by(8 * V) {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        for kk in 0..k {
            if s == 0 && kk + AHEAD < k {
                ahead((kk + AHEAD) * PANEL);
            }
            let at = kk * PANEL + s;
            let w: [__m256; V] = std::array::from_fn(|j| load(at + 8 * j));
            for (r, sums) in acc.iter_mut().enumerate() {
                // SAFETY: r * k + kk < R * k, inside x (asserted by the
                // caller).
                let a = _mm256_set1_ps(unsafe { *xs.add(r * k + kk) });
                for (sum, wv) in sums.iter_mut().zip(&w) {
                    *sum = _mm256_fmadd_ps(a, *wv, *sum);
                }
            }
        }
        for (line, sums) in out.iter_mut().zip(&acc) {
            for (j, v) in sums.iter().enumerate() {
                // SAFETY: s + 8 * j + 8 <= PANEL: inside the line.
                unsafe { _mm256_storeu_ps(line.as_mut_ptr().add(s + 8 * j), *v) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{every_row_count, numbers, same_block};
    use super::super::{PANEL, portable};

    /// Every row count of the AVX2 block (each takes its own strip width)
    /// against the portable kernel, whichever kernel this processor picks
    /// for products.
    #[test]
    fn the_avx2_block_agrees_with_the_portable_one_for_every_row_count() {
        if !(std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"))
        {
            return;
        }
        fn check<const R: usize>() {
            let k = 37;
            let (x, panel) = (numbers(R * k, 6), numbers(k * PANEL, 7));
            // SAFETY: AVX2 and FMA are present (checked above); the
            // slices are exactly as long as the block reads.
            let fast = unsafe { super::block_avx2::<R>(&x, k, &panel) };
            same_block(&fast, &portable::block::<R>(&x, k, &panel));
        }
        every_row_count!(check);
    }
}
