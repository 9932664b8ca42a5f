//! The block kernel over weights held in half precision: each panel line is
//! widened to f32 in registers as it is read, so a product streams half the
//! bytes of the f32 panels while activations and sums stay in f32. On x86-64
//! the widening is one instruction per 16 (AVX-512) or 8 (F16C) weights;
//! elsewhere the portable form widens each weight in software, which is why
//! [`super::Packed::pack_half`] keeps half-precision panels only where
//! [`available`] says a fast kernel runs.
#![cfg_attr(target_arch = "x86_64", allow(unsafe_code))] // intrinsics behind run-time checks

use super::{Block, PANEL};

/// Whether this processor widens half-precision weights in its kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("f16c") && (has!("avx512f") || (has!("avx2") && has!("fma")))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `R` rows of `x` (each `k` long) against one panel of half-precision
/// weight bits, on the best kernel this processor runs.
#[inline(always)]
pub fn block<const R: usize>(x: &[f32], k: usize, panel: &[u16]) -> Block<R> {
    assert!(x.len() >= R * k && panel.len() >= k * PANEL);
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("f16c") {
            // SAFETY: the processor has AVX-512F and F16C (checked above)
            // and the slices are long enough for every read (asserted).
            return unsafe { x86::block_avx512::<R>(x, k, panel) };
        }
        if has!("avx2") && has!("fma") && has!("f16c") {
            // SAFETY: the processor has AVX2, FMA and F16C (checked above).
            return unsafe { x86::block_avx2::<R>(x, k, panel) };
        }
    }
    portable::<R>(x, k, panel)
}

/// The definition, one weight at a time.
pub fn portable<const R: usize>(x: &[f32], k: usize, panel: &[u16]) -> Block<R> {
    let mut out = [[0f32; PANEL]; R];
    for (kk, line) in panel.chunks_exact(PANEL).enumerate().take(k) {
        for (r, sums) in out.iter_mut().enumerate() {
            let a = x[r * k + kk];
            for (sum, bits) in sums.iter_mut().zip(line) {
                *sum += a * half::f16::from_bits(*bits).to_f32();
            }
        }
    }
    out
}

/// Whether a product of `m` rows should widen each panel to f32 once, into
/// a buffer, rather than in every block of rows as it reads the weights.
///
/// With AVX-512, above six blocks of rows. Widening a panel into a buffer
/// costs about as much as two or three blocks of multiply-adds (the
/// buffer is written and read back through the caches); widening in
/// registers costs the shuffle unit the broadcasts need, once per block.
/// One thread on the encoder's products (1536 x 384, 384 x 1536 and
/// 384 x 384 weights): in registers was 14-30 % faster at 13 and 16 rows
/// (one short sentence), even at 36, and 10-20 % slower from 72 rows.
/// With AVX2 never: reading half the bytes from the caches gained more
/// than the widening cost at every size measured (one thread, 96 rows
/// against 1536 x 384 weights: 32 against 24 billion multiply-adds a
/// second when widened first).
pub fn widen_first(m: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        m > super::WIDEN_ABOVE && std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = m;
        false
    }
}

/// Round `w` to the nearest half-precision value, as bits.
pub fn round(w: f32) -> u16 {
    half::f16::from_f32(w).to_bits()
}

/// Widen a run of half-precision bits into `dst` (resized to fit).
pub fn widen_into(bits: &[u16], dst: &mut Vec<f32>) {
    use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
    dst.resize(bits.len(), 0.0);
    bits.reinterpret_cast::<half::f16>()
        .convert_to_f32_slice(dst);
}

/// Widen half-precision bits back to f32.
pub fn widen(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Block, PANEL};
    use std::arch::x86_64::{
        __m128i, __m256i, _mm_loadu_si128, _mm256_cvtph_ps, _mm256_loadu_si256, _mm512_cvtph_ps,
    };

    /// The f32 kernel's register block, each 16 weights widened once per
    /// input step.
    ///
    /// # Safety
    /// The processor must have AVX-512F and F16C; `x` must hold `R * k`
    /// values and `panel` `k * PANEL`.
    #[target_feature(enable = "avx512f,f16c")]
    pub unsafe fn block_avx512<const R: usize>(x: &[f32], k: usize, panel: &[u16]) -> Block<R> {
        assert!(panel.len() >= k * PANEL);
        let w = panel.as_ptr();
        // SAFETY: `rows_avx512` asks only for the 16 weights at offsets
        // below k * PANEL, inside the panel (asserted above).
        unsafe {
            super::super::x86::rows_avx512::<R>(x, k, |at| {
                _mm512_cvtph_ps(_mm256_loadu_si256(w.add(at).cast::<__m256i>()))
            })
        }
    }

    /// The f32 kernel's AVX2 register block, each 8 weights widened once
    /// per strip and input step.
    ///
    /// # Safety
    /// The processor must have AVX2, FMA and F16C; `x` must hold `R * k`
    /// values and `panel` `k * PANEL`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn block_avx2<const R: usize>(x: &[f32], k: usize, panel: &[u16]) -> Block<R> {
        assert!(panel.len() >= k * PANEL);
        let w = panel.as_ptr();
        // SAFETY: `rows_avx2` asks only for the 8 weights at offsets below
        // k * PANEL, inside the panel (asserted above).
        unsafe {
            super::super::x86::rows_avx2::<R>(
                x,
                k,
                |at| _mm256_cvtph_ps(_mm_loadu_si128(w.add(at).cast::<__m128i>())),
                |at| super::super::x86::prefetch(w.wrapping_add(at), PANEL * 2),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{every_row_count, numbers, reference_product, same_block};
    use super::super::{PANEL, Packed};
    use super::*;

    #[test]
    fn products_use_the_weights_rounded_to_half_precision() {
        // Row counts on both sides of the widening threshold, widths that
        // are not whole panels, products split across threads.
        for (m, out, inp) in [
            (1, 70, 33),
            (5, 128, 48),
            (7, 64, 40),
            (13, 200, 64),
            (20, 130, 16),
            (37, 130, 24),
            (9, 1536, 384),
            (45, 200, 384),
        ] {
            let (w, b, x) = (numbers(out * inp, 1), numbers(out, 2), numbers(m * inp, 3));
            let packed = Packed::pack_half(&w, out, inp);
            assert_eq!(packed.is_half(), available());
            let got = packed.forward(&x, m, &b);
            let want = reference_product(&x, &b, m, inp, |j, k| widen(round(w[j * inp + k])));
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() < 1e-3,
                    "m {m} out {out} in {inp} at {i}: {g} vs {e}"
                );
            }
            let exact = Packed::pack(&w, out, inp).forward(&x, m, &b);
            assert!(got != exact, "the weights were not rounded");
        }
    }

    #[test]
    fn the_portable_kernel_agrees_with_the_chosen_one() {
        let x = numbers(6 * 40, 4);
        let panel: Vec<u16> = numbers(40 * PANEL, 5).into_iter().map(round).collect();
        same_block(&block::<6>(&x, 40, &panel), &portable::<6>(&x, 40, &panel));
    }

    /// The AVX2 form for every row count, whichever form this processor
    /// picks for products.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_kernel_agrees_with_the_portable_one_for_every_row_count() {
        use std::arch::is_x86_feature_detected as has;
        if !(has!("avx2") && has!("fma") && has!("f16c")) {
            return;
        }
        fn check<const R: usize>() {
            let k = 37;
            let x = numbers(R * k, 8);
            let panel: Vec<u16> = numbers(k * PANEL, 9).into_iter().map(round).collect();
            // SAFETY: AVX2, FMA and F16C are present (checked above); the
            // slices are exactly as long as the block reads.
            let fast = unsafe { x86::block_avx2::<R>(&x, k, &panel) };
            same_block(&fast, &portable::<R>(&x, k, &panel));
        }
        every_row_count!(check);
    }

    #[test]
    fn rounding_keeps_about_three_significant_digits() {
        for v in [0.1f32, -0.033, 1.7, 12.5, -0.000_7] {
            let back = widen(round(v));
            assert!((back - v).abs() <= v.abs() / 1024.0, "{v} became {back}");
        }
        let mut dst = vec![9.0; 3];
        widen_into(&[round(0.5), round(-2.0)], &mut dst);
        assert_eq!(dst, [0.5, -2.0]);
    }
}
