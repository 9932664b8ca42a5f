//! Weights in 8-bit blocks: each output's weights are held as signed bytes
//! in blocks of [`BLOCK`] inputs with one f32 scale per block, laid out in
//! the same panels as the f32 and half-precision weights, and widened to
//! f32 (byte times its block's scale) in registers as the kernel reads them.
//! A product then reads a little over a quarter of the bytes of f32 weights:
//! on a processor whose memory, not its multiply-adds, sets the pace of one
//! short sentence, that is what makes it cheap.
//!
//! The block size is for quality: ggml's Q8_0 (blocks of 32, activations
//! rounded to 8 bits too) moved short sentences' vectors by up to 0.004 in
//! cosine, and blocks of 32 with exact activations still by 0.0008 and the
//! published reference vector by 0.002; blocks of 16 keep every test
//! sentence within 0.9994 and the reference within 1e-3.
//!
//! On x86-64 the widening is a sign extension, a conversion and a multiply
//! inside the f32 kernel's register block: per 16 weights with AVX-512, per
//! 8 with AVX2 and FMA; elsewhere a portable form the compiler vectorises.
#![cfg_attr(target_arch = "x86_64", allow(unsafe_code))] // intrinsics behind run-time checks

use super::{Block, PANEL};

/// Inputs per scale.
pub const BLOCK: usize = 16;

/// One matrix's bytes and scales, in panels of [`PANEL`] outputs.
pub struct Bytes {
    /// `panels x in x PANEL` bytes, zero beyond the last output.
    pub q: Vec<i8>,
    /// `panels x (in / BLOCK) x PANEL` scales, one beyond the last output.
    pub scales: Vec<f32>,
}

impl Bytes {
    /// Quantise `w` (`[out, in]`, row-major); `in` must be a multiple of
    /// [`BLOCK`]. Each block's scale maps its largest magnitude to 127.
    pub fn quantize(w: &[f32], out: usize, inp: usize) -> Self {
        assert!(inp.is_multiple_of(BLOCK) && w.len() == out * inp);
        let count = out.div_ceil(PANEL);
        let blocks = inp / BLOCK;
        let mut q = vec![0i8; count * inp * PANEL];
        let mut scales = vec![1f32; count * blocks * PANEL];
        for (j, row) in w.chunks_exact(inp).enumerate() {
            let (p, c) = (j / PANEL, j % PANEL);
            for (b, block) in row.chunks_exact(BLOCK).enumerate() {
                let max = block.iter().fold(0f32, |m, v| m.max(v.abs()));
                let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
                scales[(p * blocks + b) * PANEL + c] = scale;
                for (i, v) in block.iter().enumerate() {
                    let kk = b * BLOCK + i;
                    q[(p * inp + kk) * PANEL + c] = (v / scale).round().clamp(-127.0, 127.0) as i8;
                }
            }
        }
        Self { q, scales }
    }

    /// Panel `p` of a matrix with `inp` inputs: its bytes and its scales.
    pub fn panel(&self, p: usize, inp: usize) -> (&[i8], &[f32]) {
        let blocks = inp / BLOCK;
        (
            &self.q[p * inp * PANEL..(p + 1) * inp * PANEL],
            &self.scales[p * blocks * PANEL..(p + 1) * blocks * PANEL],
        )
    }
}

/// Whether a product of `m` rows should widen each panel to f32 once, into
/// a buffer, rather than in every block of rows: past six blocks of rows
/// (a batch of sentences), where widening in registers would repeat the
/// sign extension, conversion and multiply for every block.
pub fn widen_first(m: usize) -> bool {
    m > super::WIDEN_ABOVE
}

/// Widen a panel's bytes times their scales into `dst` (resized to fit).
pub fn widen_into(q: &[i8], scales: &[f32], dst: &mut Vec<f32>) {
    dst.resize(q.len(), 0.0);
    for (kk, (line, wide)) in q
        .chunks_exact(PANEL)
        .zip(dst.chunks_exact_mut(PANEL))
        .enumerate()
    {
        let s = &scales[(kk / BLOCK) * PANEL..(kk / BLOCK + 1) * PANEL];
        for ((w, v), s) in wide.iter_mut().zip(line).zip(s) {
            *w = f32::from(*v) * s;
        }
    }
}

/// `R` rows of `x` (each `k` long) against one panel of bytes and scales,
/// on the best kernel this processor runs.
#[inline(always)]
pub fn block<const R: usize>(x: &[f32], k: usize, q: &[i8], scales: &[f32]) -> Block<R> {
    assert!(x.len() >= R * k && q.len() >= k * PANEL);
    assert!(k.is_multiple_of(BLOCK) && scales.len() >= k / BLOCK * PANEL);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            // SAFETY: the processor has AVX-512F (checked above) and the
            // slices are long enough for every read (asserted above).
            return unsafe { x86::block_avx512::<R>(x, k, q, scales) };
        }
        if has!("avx2") && has!("fma") {
            // SAFETY: the processor has AVX2 and FMA (checked above) and the
            // slices are long enough for every read (asserted above).
            return unsafe { x86::block_avx2::<R>(x, k, q, scales) };
        }
    }
    portable::<R>(x, k, q, scales)
}

/// Outputs per strip of the portable form.
const STRIP: usize = 16;

/// The portable form: the panel in strips of [`STRIP`] outputs whose sums
/// the compiler keeps in vector registers, each strip of weights widened
/// once per input step.
pub fn portable<const R: usize>(x: &[f32], k: usize, q: &[i8], scales: &[f32]) -> Block<R> {
    let mut out = [[0f32; PANEL]; R];
    for s in (0..PANEL).step_by(STRIP) {
        let mut acc = [[0f32; STRIP]; R];
        for kk in 0..k {
            let line = &q[kk * PANEL + s..kk * PANEL + s + STRIP];
            let sc = &scales[(kk / BLOCK) * PANEL + s..(kk / BLOCK) * PANEL + s + STRIP];
            let w: [f32; STRIP] = std::array::from_fn(|i| f32::from(line[i]) * sc[i]);
            for (r, sums) in acc.iter_mut().enumerate() {
                let a = x[r * k + kk];
                for (sum, wv) in sums.iter_mut().zip(&w) {
                    *sum += a * wv;
                }
            }
        }
        for (line, sums) in out.iter_mut().zip(&acc) {
            line[s..s + STRIP].copy_from_slice(sums);
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK, Block, PANEL};
    use std::arch::x86_64::{
        __m128i, _mm_loadl_epi64, _mm_loadu_si128, _mm256_cvtepi8_epi32, _mm256_cvtepi32_ps,
        _mm256_loadu_ps, _mm256_mul_ps, _mm512_cvtepi8_epi32, _mm512_cvtepi32_ps, _mm512_loadu_ps,
        _mm512_mul_ps,
    };

    /// Where the scales of the weights at panel offset `at` start: their
    /// block's scales for the panel's outputs, from the same output on.
    #[inline(always)]
    fn scales_at(at: usize) -> usize {
        (at / PANEL / BLOCK) * PANEL + at % PANEL
    }

    /// The f32 kernel's AVX-512 register block, each 16 weights widened once
    /// per input step.
    ///
    /// # Safety
    /// The processor must have AVX-512F; `x` must hold `R * k` values, `q`
    /// `k * PANEL` bytes and `scales` `k / BLOCK * PANEL` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn block_avx512<const R: usize>(
        x: &[f32],
        k: usize,
        q: &[i8],
        scales: &[f32],
    ) -> Block<R> {
        assert!(q.len() >= k * PANEL && scales.len() >= k / BLOCK * PANEL);
        let (qp, sp) = (q.as_ptr(), scales.as_ptr());
        // SAFETY: `rows_avx512` asks only for the 16 weights at offsets
        // `at = kk * PANEL + c` with kk < k and c + 16 <= PANEL: bytes
        // inside `q`, and the scales at `scales_at(at)` =
        // (kk / BLOCK) * PANEL + c, inside `scales` (both asserted above).
        unsafe {
            super::super::x86::rows_avx512::<R>(x, k, |at| {
                let bytes = _mm512_cvtepi8_epi32(_mm_loadu_si128(qp.add(at).cast::<__m128i>()));
                let scale = _mm512_loadu_ps(sp.add(scales_at(at)));
                _mm512_mul_ps(_mm512_cvtepi32_ps(bytes), scale)
            })
        }
    }

    /// The f32 kernel's AVX2 register block, each 8 weights widened once
    /// per strip and input step.
    ///
    /// # Safety
    /// The processor must have AVX2 and FMA; `x` must hold `R * k` values,
    /// `q` `k * PANEL` bytes and `scales` `k / BLOCK * PANEL` values.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block_avx2<const R: usize>(
        x: &[f32],
        k: usize,
        q: &[i8],
        scales: &[f32],
    ) -> Block<R> {
        assert!(q.len() >= k * PANEL && scales.len() >= k / BLOCK * PANEL);
        let (qp, sp) = (q.as_ptr(), scales.as_ptr());
        // SAFETY: `rows_avx2` asks only for the 8 weights at offsets
        // `at = kk * PANEL + c` with kk < k and c + 8 <= PANEL: bytes inside
        // `q`, and the scales at `scales_at(at)` = (kk / BLOCK) * PANEL + c,
        // inside `scales` (both asserted above).
        unsafe {
            super::super::x86::rows_avx2::<R>(
                x,
                k,
                |at| {
                    let bytes = _mm256_cvtepi8_epi32(_mm_loadl_epi64(qp.add(at).cast::<__m128i>()));
                    let scale = _mm256_loadu_ps(sp.add(scales_at(at)));
                    _mm256_mul_ps(_mm256_cvtepi32_ps(bytes), scale)
                },
                |at| super::super::x86::prefetch(qp.wrapping_add(at), PANEL),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{every_row_count, numbers, reference_product, same_block};
    use super::super::{PANEL, Packed};
    use super::*;

    /// The weights of `bytes` (`out` x `inp`) widened, panel by panel.
    fn widened(bytes: &Bytes, out: usize, inp: usize) -> Vec<Vec<f32>> {
        (0..out.div_ceil(PANEL))
            .map(|p| {
                let (q, s) = bytes.panel(p, inp);
                let mut wide = Vec::new();
                widen_into(q, s, &mut wide);
                wide
            })
            .collect()
    }

    #[test]
    fn products_match_the_exact_ones_within_the_rounding_of_the_weights() {
        // Row counts on both sides of the widening threshold, widths that
        // are not whole panels, products split across threads.
        for (m, out, inp) in [
            (1, 8, 32),
            (5, 12, 64),
            (7, 384, 384),
            (13, 200, 64),
            (40, 130, 48),
            (9, 1536, 384),
        ] {
            let (w, x, b) = (
                numbers(out * inp, 7),
                numbers(m * inp, 11),
                numbers(out, 13),
            );
            let packed = Packed::pack_int8(&w, out, inp);
            let got = packed.forward(&x, m, &b);
            let exact = Packed::pack(&w, out, inp).forward(&x, m, &b);
            let wide = widened(&Bytes::quantize(&w, out, inp), out, inp);
            let rounded = reference_product(&x, &b, m, inp, |j, k| {
                wide[j / PANEL][k * PANEL + j % PANEL]
            });
            for ((g, e), r) in got.iter().zip(&exact).zip(&rounded) {
                // Each weight is off by at most half a step of its block's
                // scale (1/254 of the block's largest), times |x| <= 1.
                let bound = inp as f32 * 0.5 / 127.0 + 1e-4;
                assert!((g - e).abs() <= bound, "{m}x{out}x{inp}: {g} vs {e}");
                assert!((g - r).abs() < 1e-3, "{m}x{out}x{inp}: {g} vs {r}");
            }
            assert_ne!(got, exact, "the 8-bit path must not be the exact one");
        }
    }

    #[test]
    fn zero_blocks_and_extremes_round_trip() {
        let mut w = vec![0f32; 64];
        w[32] = -2.0;
        w[33] = 2.0;
        let bytes = Bytes::quantize(&w, 1, 64);
        let q: Vec<i8> = (0..64).map(|k| bytes.q[k * PANEL]).collect();
        assert_eq!(q[..32], [0i8; 32]);
        assert_eq!((q[32], q[33]), (-127, 127));
        assert!(
            bytes.q[1..PANEL].iter().all(|v| *v == 0),
            "beyond the last output"
        );
        let mut x = vec![0f32; 64];
        (x[32], x[33]) = (1.0, 0.5);
        let packed = Packed::pack_int8(&w, 1, 64);
        assert_eq!(packed.forward(&x, 1, &[0.25]), vec![-2.0 + 1.0 + 0.25]);
    }

    #[test]
    fn every_kernel_this_processor_runs_agrees_with_the_portable_one_for_every_row_count() {
        fn check<const R: usize>() {
            let k = 48;
            let x = numbers(R * k, 8);
            let bytes = Bytes::quantize(&numbers(PANEL * k, 9), PANEL, k);
            let (q, s) = bytes.panel(0, k);
            let expected = portable::<R>(&x, k, q, s);
            same_block(&block::<R>(&x, k, q, s), &expected);
            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") {
                    // SAFETY: the processor has AVX-512F; the slices fit.
                    same_block(&unsafe { x86::block_avx512::<R>(&x, k, q, s) }, &expected);
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: the processor has AVX2 and FMA; the slices fit.
                    same_block(&unsafe { x86::block_avx2::<R>(&x, k, q, s) }, &expected);
                }
            }
        }
        every_row_count!(check);
    }
}
