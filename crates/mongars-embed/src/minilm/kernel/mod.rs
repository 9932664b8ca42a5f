//! Dense f32 products `x W^T + b` for the encoder, without a tensor library
//! in between.
//!
//! A sentence is a handful of rows against weight matrices of 384 x 384 and
//! 384 x 1536: a general-purpose matrix library spends more of such a
//! product re-packing operands, dispatching and waking threads than
//! multiplying. Here each weight matrix is packed once, at load time, into
//! column panels of [`PANEL`] outputs laid out input by input, so that a
//! product streams every panel once, in order, while a block of up to six
//! activation rows stays in registers ([`ROWS`]). The block kernel is
//! written for AVX-512 and for AVX2 with FMA (x86-64 that has them, chosen
//! at run time), with a portable form the compiler vectorises for plain
//! x86-64 and NEON on arm64. Products large enough to pay for it are split by
//! panels across the compute threads. Panels may also hold the weights in
//! half precision ([`Packed::pack_half`], see [`halves`]): a product then
//! reads half the bytes, which is most of the cost of one short sentence;
//! or in 8-bit blocks ([`Packed::pack_int8`], see [`bytes`]), a little over
//! a quarter.

mod bytes;
mod halves;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use bytes::BLOCK;

/// Outputs per packed panel.
pub const PANEL: usize = 64;
/// Activation rows per register block.
pub const ROWS: usize = 6;
/// Rows above which a product may widen each panel of narrow weights into
/// a buffer once rather than in every block of rows (see
/// `halves::widen_first` and `bytes::widen_first`): six blocks.
const WIDEN_ABOVE: usize = 6 * ROWS;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_FROM: usize = 1 << 20;

/// An `[out, in]` weight matrix packed in panels of [`PANEL`] outputs.
pub struct Packed {
    out: usize,
    inp: usize,
    /// `panels x inp x PANEL`, zero beyond the last output.
    panels: Panels,
}

enum Panels {
    F32(Vec<f32>),
    /// Half-precision bits, widened by the kernel.
    Half(Vec<u16>),
    /// Bytes and their blocks' scales, widened by the kernel.
    Int8(bytes::Bytes),
}

/// One panel's block of results: `R` rows of [`PANEL`] outputs.
type Block<const R: usize> = [[f32; PANEL]; R];

impl Packed {
    /// Pack `w` (`[out, in]`, row-major, the layout of a PyTorch linear
    /// layer).
    pub fn pack(w: &[f32], out: usize, inp: usize) -> Self {
        let panels = Panels::F32(layout(w, out, inp, |v| v));
        Self { out, inp, panels }
    }

    /// Pack `w` rounded to half precision: held as half-precision bits
    /// where this processor has a kernel that widens them (x86-64 with
    /// F16C), else as the rounded values in f32, so that the products are
    /// the same everywhere and only their speed differs.
    pub fn pack_half(w: &[f32], out: usize, inp: usize) -> Self {
        let panels = if halves::available() {
            Panels::Half(layout(w, out, inp, halves::round))
        } else {
            Panels::F32(layout(w, out, inp, |v| halves::widen(halves::round(v))))
        };
        Self { out, inp, panels }
    }

    /// Pack `w` in 8-bit blocks of [`BLOCK`] inputs with a scale each;
    /// `in` must be a multiple of [`BLOCK`].
    pub fn pack_int8(w: &[f32], out: usize, inp: usize) -> Self {
        let panels = Panels::Int8(bytes::Bytes::quantize(w, out, inp));
        Self { out, inp, panels }
    }

    /// Whether the panels hold half-precision bits.
    #[cfg(test)]
    pub fn is_half(&self) -> bool {
        matches!(self.panels, Panels::Half(_))
    }

    /// Whether the panels hold 8-bit blocks.
    #[cfg(test)]
    pub fn is_int8(&self) -> bool {
        matches!(self.panels, Panels::Int8(_))
    }

    /// `x W^T + bias` for `x` of `m` rows of `in` values; `[m, out]`.
    #[cfg(test)]
    pub fn forward(&self, x: &[f32], m: usize, bias: &[f32]) -> Vec<f32> {
        let mut dst = vec![0f32; m * self.out];
        self.forward_into(x, m, bias, &mut dst);
        dst
    }

    /// `x W^T + bias` for `x` of `m` rows of `in` values, written over
    /// `dst` (`[m, out]`).
    pub fn forward_into(&self, x: &[f32], m: usize, bias: &[f32], dst: &mut [f32]) {
        assert_eq!(x.len(), m * self.inp, "activation size");
        assert_eq!(bias.len(), self.out, "bias size");
        let (out, inp) = (self.out, self.inp);
        by_columns(m, out, inp, PANEL, PARALLEL_FROM, dst, |cols, rows| {
            let which = cols.start / PANEL..cols.end.div_ceil(PANEL);
            self.panels(x, which, bias, rows);
        });
    }

    /// Panels `which` for every row of `x` into `rows` (one slice per row,
    /// the first output of panel `which.start` at offset 0).
    fn panels(
        &self,
        x: &[f32],
        which: std::ops::Range<usize>,
        bias: &[f32],
        rows: &mut [&mut [f32]],
    ) {
        let k = self.inp;
        let m = rows.len();
        let base = which.start * PANEL;
        for p in which {
            let span = p * k * PANEL..(p + 1) * k * PANEL;
            let first = p * PANEL;
            let width = PANEL.min(self.out - first);
            let mut put = |row: usize, results: &[[f32; PANEL]]| {
                for (r, line) in results.iter().enumerate() {
                    let at = first - base;
                    for ((d, v), b) in rows[row + r][at..at + width]
                        .iter_mut()
                        .zip(line)
                        .zip(&bias[first..first + width])
                    {
                        *d = v + b;
                    }
                }
            };
            WIDENED.with_borrow_mut(|wide| {
                let view = match &self.panels {
                    Panels::F32(v) => View::F32(&v[span]),
                    // Many row blocks would widen every weight once each:
                    // widen the panel once for all of them instead, where
                    // that pays (see `halves::widen_first`).
                    Panels::Half(v) if halves::widen_first(m) => {
                        halves::widen_into(&v[span], wide);
                        View::F32(wide)
                    }
                    Panels::Half(v) => View::Half(&v[span]),
                    Panels::Int8(b) => {
                        let (q, scales) = b.panel(p, k);
                        if bytes::widen_first(m) {
                            bytes::widen_into(q, scales, wide);
                            View::F32(wide)
                        } else {
                            View::Int8(q, scales)
                        }
                    }
                };
                let mut row = 0;
                while row < m {
                    let xs = &x[row * k..];
                    match m - row {
                        1 => put(row, &view.block::<1>(xs, k)),
                        2 => put(row, &view.block::<2>(xs, k)),
                        3 => put(row, &view.block::<3>(xs, k)),
                        4 => put(row, &view.block::<4>(xs, k)),
                        5 => put(row, &view.block::<5>(xs, k)),
                        _ => put(row, &view.block::<ROWS>(xs, k)),
                    }
                    row += ROWS;
                }
            });
        }
    }
}

thread_local! {
    /// The widened panel of the product this thread is computing.
    static WIDENED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One panel's weights as the kernels read them.
enum View<'a> {
    F32(&'a [f32]),
    Half(&'a [u16]),
    Int8(&'a [i8], &'a [f32]),
}

impl View<'_> {
    /// `R` rows of `x` (each `k` long) against this panel.
    #[inline(always)]
    fn block<const R: usize>(&self, x: &[f32], k: usize) -> Block<R> {
        match self {
            View::F32(panel) => block::<R>(x, k, panel),
            View::Half(panel) => halves::block::<R>(x, k, panel),
            View::Int8(q, scales) => bytes::block::<R>(x, k, q, scales),
        }
    }
}

/// `w` (`[out, in]`, row-major) laid out in panels of [`PANEL`] outputs,
/// input by input, each weight through `cast`; zero beyond the last output.
fn layout<T: Copy + Default>(w: &[f32], out: usize, inp: usize, cast: impl Fn(f32) -> T) -> Vec<T> {
    assert_eq!(w.len(), out * inp, "weight size");
    let count = out.div_ceil(PANEL);
    let mut panels = vec![T::default(); count * inp * PANEL];
    for (p, panel) in panels.chunks_exact_mut(inp * PANEL).enumerate() {
        for (k, line) in panel.chunks_exact_mut(PANEL).enumerate() {
            for (c, v) in line.iter_mut().enumerate() {
                let j = p * PANEL + c;
                if j < out {
                    *v = cast(w[j * inp + k]);
                }
            }
        }
    }
    panels
}

thread_local! {
    /// Whether this thread's products may be split across the compute
    /// threads (see [`splitting`]).
    static SPLIT: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Runs `f` with the products it computes on this thread split across the
/// compute threads or not. A batch that runs alone is split, for its
/// latency; batches that run at once each keep to their own thread, which
/// spends no time waiting for another thread's half of a product.
pub(super) fn splitting<T>(split: bool, f: impl FnOnce() -> T) -> T {
    /// Puts the thread's setting back when dropped, even by a panic of `f`.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SPLIT.set(self.0);
        }
    }
    let _restore = Restore(SPLIT.replace(split));
    f()
}

/// Fills `dst`, an `[m, out]` product, by `fill(columns, rows)`, where
/// `rows` holds, for each of the `m` rows, the slice of its outputs in
/// `columns`: whole on the calling thread below `parallel_from`
/// multiply-adds, else in one band of columns per compute thread (so each
/// weight is read by one thread only), bands starting at multiples of
/// `align`. Every thread writes straight into its own part of `dst`: no
/// output is allocated or copied per product, which keeps a forward pass
/// from churning the heap.
pub(super) fn by_columns(
    m: usize,
    out: usize,
    inp: usize,
    align: usize,
    parallel_from: usize,
    dst: &mut [f32],
    fill: impl Fn(std::ops::Range<usize>, &mut [&mut [f32]]) + Sync,
) {
    assert_eq!(dst.len(), m * out, "output size");
    if m == 0 || out == 0 {
        return;
    }
    let units = out.div_ceil(align);
    let threads = rayon::current_num_threads().clamp(1, units);
    if m * out * inp < parallel_from || threads == 1 || !SPLIT.get() {
        let mut rows: Vec<&mut [f32]> = dst.chunks_exact_mut(out).collect();
        fill(0..out, &mut rows);
        return;
    }
    let band = units.div_ceil(threads) * align;
    let mut bands: Vec<(std::ops::Range<usize>, Vec<&mut [f32]>)> = (0..out)
        .step_by(band)
        .map(|start| (start..(start + band).min(out), Vec::with_capacity(m)))
        .collect();
    for row in dst.chunks_exact_mut(out) {
        let mut rest = row;
        for (cols, rows) in &mut bands {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(cols.len());
            rows.push(head);
            rest = tail;
        }
    }
    use rayon::prelude::*;
    bands
        .par_iter_mut()
        .for_each(|(cols, rows)| fill(cols.clone(), rows));
}

/// `R` rows of `x` (each `k` long) against one packed panel, on the best
/// kernel this processor runs.
fn block<const R: usize>(x: &[f32], k: usize, panel: &[f32]) -> Block<R> {
    assert!(x.len() >= R * k && panel.len() == k * PANEL);
    #[cfg(target_arch = "x86_64")]
    if let Some(out) = x86::block::<R>(x, k, panel) {
        return out;
    }
    portable::block::<R>(x, k, panel)
}

#[cfg(test)]
pub(super) mod tests {
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
}
