//! Products in bfloat16: weights and activations rounded to bfloat16 (the
//! upper half of an f32, to nearest, ties to even), multiplied and summed
//! in f32. Every product of two bfloat16 values is exact in f32, so the
//! result is the rounded operands' product up to the order of the sums.
//!
//! On x86-64 with AVX-512 BF16 one instruction multiplies 16 pairs of
//! weights by a pair of activations and adds both products to 16 sums: 32
//! multiply-adds where the f32 kernel does 16, in the same register block.
//! The panels then hold, for each pair of inputs, the 64 outputs' two
//! weights side by side in 32 bits. Elsewhere the same rounded weights are
//! packed as f32 and the activations rounded before the f32 kernel (see
//! [`super::Packed::pack_bf16`]), so the vectors are the same on every
//! processor and only their speed differs.
#![cfg_attr(target_arch = "x86_64", allow(unsafe_code))] // intrinsics behind run-time checks

use super::{Block, PANEL};

/// Whether this processor multiplies bfloat16 pairs in its kernel.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx512f") && has!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `v` rounded to the nearest bfloat16 (ties to even), as its 16 bits.
/// Subnormal values become zero of their sign, as the conversion
/// instruction of AVX-512 BF16 has it, so that both give the same bits.
pub fn bits(v: f32) -> u16 {
    let b = v.to_bits();
    if v.is_nan() {
        // Quiet, whatever the payload's lower half held.
        return ((b >> 16) as u16) | 0x40;
    }
    if v.is_subnormal() {
        return ((b >> 16) as u16) & 0x8000;
    }
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1));
    (rounded >> 16) as u16
}

/// `v` rounded to the nearest bfloat16, as an f32.
pub fn round(v: f32) -> f32 {
    f32::from_bits(u32::from(bits(v)) << 16)
}

/// Row-major values, an even count per row, as pairs of bfloat16: the
/// first of each pair in the low half. Written over `out`; 32 values per
/// instruction where the processor has the bfloat16 kernel.
pub fn pairs_into(x: &[f32], out: &mut Vec<u32>) {
    out.clear();
    out.reserve(x.len() / 2);
    let mut rest = x;
    #[cfg(target_arch = "x86_64")]
    if available() {
        let whole = x.len() / 32 * 32;
        // SAFETY: the processor has AVX-512F and AVX-512 BF16 (checked
        // above), and the slice is whole blocks of 32 values.
        unsafe { x86::pairs_avx512(&x[..whole], out) };
        rest = &x[whole..];
    }
    pairs_portable(rest, out);
}

/// Appends the pairs of `x` to `out`, one at a time.
fn pairs_portable(x: &[f32], out: &mut Vec<u32>) {
    out.extend(
        x.chunks_exact(2)
            .map(|p| u32::from(bits(p[0])) | (u32::from(bits(p[1])) << 16)),
    );
}

/// `w` (`[out, in]`, row-major, `in` even) in panels of [`PANEL`] outputs,
/// pair of inputs by pair of inputs, each output's two weights in one
/// 32-bit value; zero beyond the last output.
pub fn layout(w: &[f32], out: usize, inp: usize) -> Vec<u32> {
    assert!(inp.is_multiple_of(2) && w.len() == out * inp, "weight size");
    let half = inp / 2;
    let count = out.div_ceil(PANEL);
    let mut panels = vec![0u32; count * half * PANEL];
    for (p, panel) in panels.chunks_exact_mut(half * PANEL).enumerate() {
        for (kk, line) in panel.chunks_exact_mut(PANEL).enumerate() {
            for (c, v) in line.iter_mut().enumerate() {
                let j = p * PANEL + c;
                if j < out {
                    let at = j * inp + 2 * kk;
                    *v = u32::from(bits(w[at])) | (u32::from(bits(w[at + 1])) << 16);
                }
            }
        }
    }
    panels
}

/// `R` rows of activation pairs `x` (each `pairs` long) against one panel
/// of weight pairs, on the bfloat16 kernel where this processor has one.
#[inline(always)]
pub fn block<const R: usize>(x: &[u32], pairs: usize, panel: &[u32]) -> Block<R> {
    assert!(x.len() >= R * pairs && panel.len() >= pairs * PANEL);
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the processor has AVX-512F and AVX-512 BF16 (checked
        // above) and the slices are long enough for every read (asserted).
        return unsafe { x86::block_avx512::<R>(x, pairs, panel) };
    }
    portable::<R>(x, pairs, panel)
}

fn widen(bits: u32) -> f32 {
    f32::from_bits(bits << 16)
}

/// The definition, one pair at a time.
pub fn portable<const R: usize>(x: &[u32], pairs: usize, panel: &[u32]) -> Block<R> {
    let mut out = [[0f32; PANEL]; R];
    for (kk, line) in panel.chunks_exact(PANEL).enumerate().take(pairs) {
        for (r, sums) in out.iter_mut().enumerate() {
            let a = x[r * pairs + kk];
            let (a0, a1) = (widen(a & 0xffff), widen(a >> 16));
            for (sum, w) in sums.iter_mut().zip(line) {
                *sum += a0 * widen(w & 0xffff) + a1 * widen(w >> 16);
            }
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Block, PANEL};
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps, _mm512_loadu_ps,
        _mm512_loadu_si512, _mm512_set1_epi32, _mm512_setzero_ps, _mm512_storeu_si512,
    };

    /// Appends the bfloat16 pairs of `x` (whole blocks of 32 values) to
    /// `out`: each block's two halves rounded in one instruction, whose
    /// result holds the first half's values in its low 16 lanes, so that
    /// each 32-bit lane is one pair with its first value low.
    ///
    /// # Safety
    /// The processor must have AVX-512F and AVX-512 BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn pairs_avx512(x: &[f32], out: &mut Vec<u32>) {
        assert!(x.len().is_multiple_of(32));
        let start = out.len();
        out.reserve(x.len() / 2);
        let dst = out.spare_capacity_mut().as_mut_ptr().cast::<u32>();
        for (i, block) in x.chunks_exact(32).enumerate() {
            // SAFETY: both loads read inside the 32-value block; the store
            // writes 16 values at `16 * i`, inside the `x.len() / 2` of
            // spare capacity reserved above.
            unsafe {
                let low = _mm512_loadu_ps(block.as_ptr());
                let high = _mm512_loadu_ps(block.as_ptr().add(16));
                let pairs =
                    std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(high, low));
                _mm512_storeu_si512(dst.add(16 * i).cast(), pairs);
            }
        }
        // SAFETY: every value up to the new length was written above.
        unsafe { out.set_len(start + x.len() / 2) };
    }

    /// Six rows of four 16-wide sums, as in the f32 kernel; each step
    /// takes one pair of inputs: the line's 64 weight pairs loaded once,
    /// each row's activation pair broadcast.
    ///
    /// # Safety
    /// The processor must have AVX-512F and AVX-512 BF16; `x` must hold
    /// `R * pairs` values and `panel` `pairs * PANEL`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn block_avx512<const R: usize>(x: &[u32], pairs: usize, panel: &[u32]) -> Block<R> {
        assert!(x.len() >= R * pairs && panel.len() >= pairs * PANEL);
        let mut acc: [[__m512; 4]; R] = [[_mm512_setzero_ps(); 4]; R];
        let w = panel.as_ptr();
        // SAFETY (reads): `at + 48 + 16 <= pairs * PANEL` for every
        // `kk < pairs`, inside the panel; `r * pairs + kk < R * pairs`,
        // inside `x` (both asserted above). The casts reinterpret 16
        // 32-bit lanes as 32 bfloat16 lanes, the instruction's operands.
        let load = |at: usize| -> __m512bh {
            let v: __m512i = unsafe { _mm512_loadu_si512(w.add(at).cast()) };
            unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
        };
        for kk in 0..pairs {
            let at = kk * PANEL;
            let (w0, w1, w2, w3) = (load(at), load(at + 16), load(at + 32), load(at + 48));
            for (r, sums) in acc.iter_mut().enumerate() {
                let pair = unsafe { *x.as_ptr().add(r * pairs + kk) };
                let a = _mm512_set1_epi32(pair as i32);
                let a = unsafe { std::mem::transmute::<__m512i, __m512bh>(a) };
                sums[0] = _mm512_dpbf16_ps(sums[0], a, w0);
                sums[1] = _mm512_dpbf16_ps(sums[1], a, w1);
                sums[2] = _mm512_dpbf16_ps(sums[2], a, w2);
                sums[3] = _mm512_dpbf16_ps(sums[3], a, w3);
            }
        }
        // SAFETY: the processor has AVX-512F (the caller's contract).
        unsafe { super::super::x86::store_avx512(&acc) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{every_row_count, numbers, reference_product, same_block};
    use super::super::{PANEL, Packed};
    use super::*;

    #[test]
    fn rounding_is_to_nearest_with_ties_to_even() {
        assert_eq!(round(1.0), 1.0);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: to the even one.
        assert_eq!(round(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(round(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round(1.0 + 1.5 / 256.0), 1.0 + 2.0 / 256.0);
        assert_eq!(round(-2.5), -2.5);
        assert!(round(f32::NAN).is_nan());
        assert_eq!(round(f32::INFINITY), f32::INFINITY);
        assert_eq!(bits(-f32::MIN_POSITIVE / 2.0), 0x8000);
        assert_eq!(bits(f32::MIN_POSITIVE / 4.0), 0);
    }

    #[test]
    fn pairing_gives_the_same_bits_on_every_path() {
        // Ties, subnormals, infinities, NaN and values that round up into
        // the next binade, among ordinary ones; lengths that end inside a
        // block of 32.
        let mut x = numbers(1000, 8);
        let special = [
            1.0 + 1.0 / 256.0,
            1.0 + 3.0 / 256.0,
            -(1.0 + 1.0 / 256.0),
            f32::MIN_POSITIVE / 2.0,
            -f32::MIN_POSITIVE / 3.0,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -0.0,
            f32::MAX,
            1.999_999_9,
        ];
        for (i, v) in special.iter().cycle().take(200).enumerate() {
            x[i * 5] = *v;
        }
        for len in [0, 2, 30, 32, 34, 64, 998, 1000] {
            let mut want = Vec::new();
            pairs_portable(&x[..len], &mut want);
            let mut got = vec![7u32; 3];
            pairs_into(&x[..len], &mut got);
            assert_eq!(got, want, "{len} values");
        }
    }

    #[test]
    fn products_use_the_weights_and_activations_rounded_to_bfloat16() {
        // Row counts past a block, widths that are not whole panels,
        // products split across threads.
        for (m, out, inp) in [
            (1, 70, 32),
            (5, 128, 48),
            (7, 64, 40),
            (13, 200, 64),
            (9, 1536, 384),
            (45, 200, 384),
        ] {
            let (w, b, x) = (numbers(out * inp, 1), numbers(out, 2), numbers(m * inp, 3));
            let packed = Packed::pack_bf16(&w, out, inp);
            assert_eq!(packed.is_bf16(), available());
            let got = packed.forward(&x, m, &b);
            let rounded: Vec<f32> = x.iter().map(|v| round(*v)).collect();
            let want = reference_product(&rounded, &b, m, inp, |j, k| round(w[j * inp + k]));
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() < 1e-3,
                    "m {m} out {out} in {inp} at {i}: {g} vs {e}"
                );
            }
            let exact = Packed::pack(&w, out, inp).forward(&x, m, &b);
            assert!(
                got != exact,
                "the bfloat16 product must not be the exact one"
            );
        }
    }

    #[test]
    fn every_kernel_this_processor_runs_agrees_with_the_portable_one() {
        fn check<const R: usize>() {
            let pairs = 40;
            let x: Vec<u32> = {
                let mut v = Vec::new();
                pairs_into(&numbers(R * 2 * pairs, 6), &mut v);
                v
            };
            let panel = layout(&numbers(PANEL * 2 * pairs, 7), PANEL, 2 * pairs);
            let want = portable::<R>(&x, pairs, &panel);
            same_block(&block::<R>(&x, pairs, &panel), &want);
            #[cfg(target_arch = "x86_64")]
            if available() {
                // SAFETY: the processor has both (checked above).
                same_block(&unsafe { x86::block_avx512::<R>(&x, pairs, &panel) }, &want);
            }
        }
        every_row_count!(check);
    }
}
