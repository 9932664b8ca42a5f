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
//! a quarter. In bfloat16 ([`Packed::pack_bf16`], see [`bfloat`]) weights
//! and activations are both rounded, which lets processors with AVX-512
//! BF16 do twice the multiply-adds per instruction.

mod bfloat;
mod bytes;
mod halves;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use bytes::BLOCK;

/// Whether this processor multiplies bfloat16 pairs in its kernel
/// (AVX-512 BF16); without it bfloat16 runs at f32's speed.
pub(super) use bfloat::available as bfloat16_kernel;

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
    /// Activations are rounded to bfloat16 before the product (bfloat16
    /// weights held as f32, on processors without a bfloat16 kernel).
    rounds_inputs: bool,
}

enum Panels {
    F32(Vec<f32>),
    /// Half-precision bits, widened by the kernel.
    Half(Vec<u16>),
    /// Bytes and their blocks' scales, widened by the kernel.
    Int8(bytes::Bytes),
    /// Pairs of bfloat16 weights, multiplied against pairs of bfloat16
    /// activations (`panels x in/2 x PANEL`).
    Bf16(Vec<u32>),
}

/// One panel's block of results: `R` rows of [`PANEL`] outputs.
type Block<const R: usize> = [[f32; PANEL]; R];

impl Packed {
    /// Pack `w` (`[out, in]`, row-major, the layout of a PyTorch linear
    /// layer).
    pub fn pack(w: &[f32], out: usize, inp: usize) -> Self {
        let panels = Panels::F32(layout(w, out, inp, |v| v));
        Self::with(out, inp, panels)
    }

    fn with(out: usize, inp: usize, panels: Panels) -> Self {
        Self {
            out,
            inp,
            panels,
            rounds_inputs: false,
        }
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
        Self::with(out, inp, panels)
    }

    /// Pack `w` in 8-bit blocks of [`BLOCK`] inputs with a scale each;
    /// `in` must be a multiple of [`BLOCK`].
    pub fn pack_int8(w: &[f32], out: usize, inp: usize) -> Self {
        let panels = Panels::Int8(bytes::Bytes::quantize(w, out, inp));
        Self::with(out, inp, panels)
    }

    /// Pack `w` rounded to bfloat16, its products taken against
    /// activations rounded to bfloat16: as pairs for the bfloat16 kernel
    /// where this processor has one and `in` is even, else as the rounded
    /// values in f32, so that the products are the same everywhere and
    /// only their speed differs.
    pub fn pack_bf16(w: &[f32], out: usize, inp: usize) -> Self {
        let panels = if bfloat::available() && inp.is_multiple_of(2) {
            Panels::Bf16(bfloat::layout(w, out, inp))
        } else {
            Panels::F32(layout(w, out, inp, bfloat::round))
        };
        Self {
            rounds_inputs: true,
            ..Self::with(out, inp, panels)
        }
    }

    /// Whether the panels hold bfloat16 pairs.
    #[cfg(test)]
    pub fn is_bf16(&self) -> bool {
        matches!(self.panels, Panels::Bf16(_))
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
        match &self.panels {
            Panels::Bf16(_) => with_retained(&PAIRS, |pairs| {
                bfloat::pairs_into(x, pairs);
                self.product(Input::Pairs(pairs), m, bias, dst);
            }),
            _ if self.rounds_inputs => with_retained(&FLOATS, |floats| {
                floats.clear();
                floats.extend(x.iter().map(|v| bfloat::round(*v)));
                self.product(Input::F32(floats), m, bias, dst);
            }),
            _ => self.product(Input::F32(x), m, bias, dst),
        }
    }

    /// `input W^T + b` into `dst`, split by panels across the compute
    /// threads when it is large enough.
    fn product(&self, input: Input<'_>, m: usize, bias: &[f32], dst: &mut [f32]) {
        by_columns(
            m,
            self.out,
            self.inp,
            PANEL,
            PARALLEL_FROM,
            dst,
            |cols, rows| {
                let which = cols.start / PANEL..cols.end.div_ceil(PANEL);
                self.panels(input, which, bias, rows);
            },
        );
    }

    /// Panels `which` for every row of `x` into `rows` (one slice per row,
    /// the first output of panel `which.start` at offset 0).
    fn panels(
        &self,
        input: Input<'_>,
        which: std::ops::Range<usize>,
        bias: &[f32],
        rows: &mut [&mut [f32]],
    ) {
        let k = self.inp;
        let m = rows.len();
        let base = which.start * PANEL;
        for p in which {
            let span = p * k * PANEL..(p + 1) * k * PANEL;
            let pair_span = p * (k / 2) * PANEL..(p + 1) * (k / 2) * PANEL;
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
                    Panels::Bf16(v) => View::Bf16(&v[pair_span]),
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
                    match m - row {
                        1 => put(row, &view.block::<1>(input, row, k)),
                        2 => put(row, &view.block::<2>(input, row, k)),
                        3 => put(row, &view.block::<3>(input, row, k)),
                        4 => put(row, &view.block::<4>(input, row, k)),
                        5 => put(row, &view.block::<5>(input, row, k)),
                        _ => put(row, &view.block::<ROWS>(input, row, k)),
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
    /// Activations rounded to bfloat16, in pairs or as floats (kept for
    /// the next product this thread starts).
    static PAIRS: std::cell::Cell<Vec<u32>> = const { std::cell::Cell::new(Vec::new()) };
    static FLOATS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Runs `f` on this thread's buffer in `cell`, taken out while in use so
/// that a product this thread runs meanwhile (the compute pool steals work
/// while it waits) makes its own; kept for the next product unless a large
/// batch grew it, as the encoder keeps its own activations (see
/// `bert::RETAINED_FLOATS`).
fn with_retained<T: 'static>(
    cell: &'static std::thread::LocalKey<std::cell::Cell<Vec<T>>>,
    f: impl FnOnce(&mut Vec<T>),
) {
    let mut buffer = cell.take();
    f(&mut buffer);
    if buffer.capacity() <= super::bert::RETAINED_FLOATS {
        cell.set(buffer);
    }
}

/// A product's activations, `[m, in]`: as floats, or as bfloat16 pairs
/// for bfloat16 panels (`[m, in/2]`).
#[derive(Clone, Copy)]
enum Input<'a> {
    F32(&'a [f32]),
    Pairs(&'a [u32]),
}

/// One panel's weights as the kernels read them.
enum View<'a> {
    F32(&'a [f32]),
    Half(&'a [u16]),
    Int8(&'a [i8], &'a [f32]),
    Bf16(&'a [u32]),
}

impl View<'_> {
    /// `R` rows of the input from `row` on (each `k` inputs long) against
    /// this panel.
    #[inline(always)]
    fn block<const R: usize>(&self, input: Input<'_>, row: usize, k: usize) -> Block<R> {
        match (self, input) {
            (View::F32(panel), Input::F32(x)) => block::<R>(&x[row * k..], k, panel),
            (View::Half(panel), Input::F32(x)) => halves::block::<R>(&x[row * k..], k, panel),
            (View::Int8(q, scales), Input::F32(x)) => {
                bytes::block::<R>(&x[row * k..], k, q, scales)
            }
            (View::Bf16(panel), Input::Pairs(x)) => {
                bfloat::block::<R>(&x[row * k / 2..], k / 2, panel)
            }
            _ => unreachable!("bfloat16 panels take activation pairs, the others floats"),
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
pub(super) mod tests;
