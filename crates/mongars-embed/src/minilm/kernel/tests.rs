//! The kernels against the definition, and helpers the precisions'
//! own tests share.

use super::*;

/// `n` values in [-1, 1] from an xorshift seeded by `seed`.
pub fn numbers(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// `x W^T + b` in f64 for `x` of `m` rows, with `weight(j, k)` the
/// weight of output `j` and input `k`.
pub fn reference_product(
    x: &[f32],
    b: &[f32],
    m: usize,
    inp: usize,
    weight: impl Fn(usize, usize) -> f32,
) -> Vec<f32> {
    let out = b.len();
    let mut y = vec![0f32; m * out];
    for r in 0..m {
        for j in 0..out {
            let dot: f64 = (0..inp)
                .map(|k| x[r * inp + k] as f64 * weight(j, k) as f64)
                .sum();
            y[r * out + j] = dot as f32 + b[j];
        }
    }
    y
}

/// Two blocks of `R` rows agree to 1e-4.
pub fn same_block<const R: usize>(a: &Block<R>, b: &Block<R>) {
    for (u, v) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((u - v).abs() < 1e-4, "rows {R}: {u} vs {v}");
    }
}

/// `check::<R>()` for every row count a block has.
macro_rules! every_row_count {
    ($check:ident) => {
        $check::<1>();
        $check::<2>();
        $check::<3>();
        $check::<4>();
        $check::<5>();
        $check::<6>();
    };
}
pub(crate) use every_row_count;

fn naive(x: &[f32], w: &[f32], b: &[f32], m: usize, out: usize, inp: usize) -> Vec<f32> {
    let mut y = vec![0f32; m * out];
    for r in 0..m {
        for j in 0..out {
            let dot: f64 = (0..inp)
                .map(|k| x[r * inp + k] as f64 * w[j * inp + k] as f64)
                .sum();
            y[r * out + j] = dot as f32 + b[j];
        }
    }
    y
}

fn check(m: usize, out: usize, inp: usize) {
    let (w, b, x) = (numbers(out * inp, 1), numbers(out, 2), numbers(m * inp, 3));
    let packed = Packed::pack(&w, out, inp);
    let got = packed.forward(&x, m, &b);
    let want = naive(&x, &w, &b, m, out, inp);
    for (i, (g, e)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - e).abs() < 1e-3,
            "m {m} out {out} in {inp} at {i}: {g} vs {e}"
        );
    }
}

#[test]
fn products_match_the_definition_for_every_row_count() {
    for m in 1..=13 {
        check(m, 128, 48);
    }
}

#[test]
fn widths_that_are_not_whole_panels_are_exact_too() {
    check(3, 70, 5);
    check(7, 1, 33);
    check(1, 200, 384);
}

#[test]
fn large_products_split_across_threads_give_the_same_result() {
    check(40, 384, 384);
    check(9, 1536, 384);
}

/// The column bands `by_columns` fills in a pool of two threads, with
/// products split or not.
fn bands(split: bool) -> Vec<std::ops::Range<usize>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let seen = std::sync::Mutex::new(Vec::new());
    let mut dst = vec![0f32; 4 * 256];
    pool.install(|| {
        splitting(split, || {
            by_columns(4, 256, 64, PANEL, 1, &mut dst, |cols, rows| {
                assert_eq!(rows.len(), 4);
                seen.lock().unwrap().push(cols);
            })
        })
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_by_key(|c| c.start);
    seen
}

#[test]
fn a_batch_among_others_keeps_its_products_whole_on_its_thread() {
    assert_eq!(bands(true), vec![0..128, 128..256]);
    assert_eq!(bands(false), vec![0..256]);
    // And the setting is the caller's only while it runs.
    assert!(SPLIT.get());
}

#[test]
fn a_pass_that_panics_leaves_the_thread_splitting_as_before() {
    let caught = std::panic::catch_unwind(|| splitting(false, || panic!("a failed pass")));
    assert!(caught.is_err());
    assert!(SPLIT.get());
}

#[test]
fn an_output_reused_from_an_earlier_product_is_overwritten_whole() {
    for (m, out, inp) in [(2, 70, 5), (40, 384, 384), (9, 1536, 384)] {
        let (w, b, x) = (numbers(out * inp, 1), numbers(out, 2), numbers(m * inp, 3));
        let packed = Packed::pack(&w, out, inp);
        let mut dst = vec![f32::NAN; m * out];
        packed.forward_into(&x, m, &b, &mut dst);
        assert_eq!(dst, packed.forward(&x, m, &b), "m {m} out {out}");
    }
}

#[test]
fn the_portable_kernel_agrees_with_the_chosen_one() {
    let (x, panel) = (numbers(6 * 40, 4), numbers(40 * PANEL, 5));
    same_block(
        &block::<6>(&x, 40, &panel),
        &portable::block::<6>(&x, 40, &panel),
    );
}
