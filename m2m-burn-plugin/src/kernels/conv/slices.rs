//! The three kernels of a 2-D convolution (forward, input gradient, weight gradient) on
//! contiguous NCHW `f32` slices: im2col per image, one `gemm` per image, rayon over the
//! images of the batch. No bias, one group, dilation 1 (all that our models need); the
//! forward pass can end in an [`Epilogue`] (a folded BatchNorm's bias, a residual, a ReLU).

use rayon::prelude::*;

use crate::kernels::buffers::{par_filled, with_scratch};

/// Shape of one convolution: input `[n, c_in, h, w]`, weight `[c_out, c_in, kh, kw]`,
/// output `[n, c_out, oh, ow]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvShape {
    pub fn out_hw(&self) -> [usize; 2] {
        let out = |size: usize, k: usize, s: usize, p: usize| (size + 2 * p - k) / s + 1;
        [
            out(self.h, self.kernel[0], self.stride[0], self.padding[0]),
            out(self.w, self.kernel[1], self.stride[1], self.padding[1]),
        ]
    }

    /// Rows of an image's column matrix: `c_in * kh * kw`.
    fn k(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// Columns of an image's column matrix: output pixels.
    fn p(&self) -> usize {
        let [oh, ow] = self.out_hw();
        oh * ow
    }

    pub(super) fn image(&self) -> usize {
        self.c_in * self.h * self.w
    }
}

/// For output position `o` along an axis, the input index `o * stride + k - pad`, if inside.
#[inline]
fn source(o: usize, k: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    (o * stride + k).checked_sub(pad).filter(|&i| i < size)
}

/// The range of output positions `o` whose source index is inside the input.
fn valid_outputs(out: usize, k: usize, stride: usize, pad: usize, size: usize) -> std::ops::Range<usize> {
    let first = (0..out).find(|&o| source(o, k, stride, pad, size).is_some());
    match first {
        None => 0..0,
        Some(first) => {
            first..(first..out).take_while(|&o| source(o, k, stride, pad, size).is_some()).last().unwrap() + 1
        }
    }
}

/// One run of valid pixels of the column matrix: `len` entries of `row` from column
/// `col`, read from the input at `input` with the stride along x.
#[derive(Debug, Clone, Copy)]
struct Run {
    col: usize,
    input: usize,
    len: usize,
}

/// Calls `f(row, run)` for every run of valid pixels of an image's column matrix: im2col
/// and col2im share this walk. The ranges depend only on the kernel offsets, so they are
/// worked out once per call, not per channel.
fn for_each_run(s: &ConvShape, mut f: impl FnMut(usize, Run)) {
    let [kh, kw] = s.kernel;
    let [oh, ow] = s.out_hw();
    let ys: Vec<_> = (0..kh).map(|ky| valid_outputs(oh, ky, s.stride[0], s.padding[0], s.h)).collect();
    let xs: Vec<_> = (0..kw).map(|kx| valid_outputs(ow, kx, s.stride[1], s.padding[1], s.w)).collect();
    for ci in 0..s.c_in {
        for (ky, ys) in ys.iter().enumerate() {
            for (kx, xs) in xs.iter().enumerate() {
                if xs.is_empty() {
                    continue;
                }
                let row = (ci * kh + ky) * kw + kx;
                let ix0 = xs.start * s.stride[1] + kx - s.padding[1];
                for oy in ys.clone() {
                    let iy = oy * s.stride[0] + ky - s.padding[0];
                    let input = ci * s.h * s.w + iy * s.w + ix0;
                    f(row, Run { col: oy * ow + xs.start, input, len: xs.len() });
                }
            }
        }
    }
}

/// Stride 1 and an output as large as the input (3x3 with padding 1: 28 of ResNet-32's 31
/// convolutions): then each row of the column matrix is its input channel shifted by
/// (dy, dx), which [`shifted_rows`] copies in one piece instead of one run per pixel row.
fn same_size(s: &ConvShape) -> bool {
    s.stride == [1, 1] && s.out_hw() == [s.h, s.w]
}

/// For every row of the column matrix of a same-size convolution: `f(row, dst range,
/// src start, dx)`, where `cols[row][t] = image[src + t - dst.start]` for `t` in the
/// range, except where the shift wraps around a pixel row (columns `ox < -dx` or
/// `ox >= w - dx`), which [`zero_wrapped`] clears.
fn shifted_rows(s: &ConvShape, mut f: impl FnMut(usize, std::ops::Range<usize>, usize, isize)) {
    let [kh, kw] = s.kernel;
    let (h, w) = (s.h as isize, s.w as isize);
    for ci in 0..s.c_in {
        for ky in 0..kh {
            let dy = ky as isize - s.padding[0] as isize;
            for kx in 0..kw {
                let dx = kx as isize - s.padding[1] as isize;
                let shift = dy * w + dx;
                // Output positions t = oy * w + ox of the pixel rows with a source row
                // (0 <= oy + dy < h) whose source t + shift lies in this channel.
                let start = ((-dy).max(0) * w).max(-shift);
                let end = (h.min(h - dy) * w).min(h * w - shift);
                let row = (ci * kh + ky) * kw + kx;
                if start >= end {
                    f(row, 0..0, 0, dx); // the row reads only padding
                    continue;
                }
                let src = (ci as isize * h * w + start + shift) as usize;
                f(row, start as usize..end as usize, src, dx);
            }
        }
    }
}

/// Clears, in one row of a same-size column matrix, the columns that a shift by `dx`
/// wrapped around a pixel row.
///
/// A 3x3 kernel wraps one column per pixel row: that is one store, where `fill` would be a
/// call to `memset` per pixel row (7% of an M2m iteration's samples, `perf`).
fn zero_wrapped(row: &mut [f32], w: usize, dx: isize) {
    let reach = dx.unsigned_abs().min(w);
    let columns = if dx < 0 { 0..reach } else { w - reach..w };
    if reach == 1 {
        let column = columns.start;
        row.chunks_mut(w).for_each(|line| line[column] = 0.0);
        return;
    }
    for line in row.chunks_mut(w) {
        line[columns.clone()].fill(0.0);
    }
}

/// The distance between two rows of a scratch matrix with `n` columns: `n` rounded up to
/// whole cache lines, plus one line where that would be a multiple of 256 values.
/// Power-of-two distances put the rows in the same cache sets: a 32x32 layer's column
/// matrix (1,024 columns) made the weight gradient of ResNet-32's first stage 5x slower
/// than at 28x28 (`m2m-bench conv`, docs/benchmarks.md).
pub(super) fn leading(n: usize) -> usize {
    let lines = n.div_ceil(16) * 16;
    if lines.is_multiple_of(256) {
        lines + 16
    } else {
        lines
    }
}

/// `cols[K, P]` of one image, rows `ld` values apart (zeros where the kernel reads padding).
fn im2col(s: &ConvShape, image: &[f32], cols: &mut [f32], ld: usize) {
    let (p, sx) = (s.p(), s.stride[1]);
    if same_size(s) {
        // Every entry is written: the copy, zeros around it and in the wrapped columns.
        shifted_rows(s, |row, range, src, dx| {
            let row = &mut cols[row * ld..row * ld + p];
            row[..range.start].fill(0.0);
            row[range.end..].fill(0.0);
            row[range.clone()].copy_from_slice(&image[src..src + range.len()]);
            if dx != 0 {
                zero_wrapped(row, s.w, dx);
            }
        });
        return;
    }
    cols.fill(0.0);
    for_each_run(s, |row, run| {
        let dst = &mut cols[row * ld + run.col..][..run.len];
        if sx == 1 {
            dst.copy_from_slice(&image[run.input..][..run.len]);
        } else {
            let src = &image[run.input..][..(run.len - 1) * sx + 1];
            dst.iter_mut().zip(src.iter().step_by(sx)).for_each(|(d, v)| *d = *v);
        }
    });
}

/// Adds `cols[K, P]` (rows `ld` values apart) back into one image's gradient (the adjoint
/// of [`im2col`]). Clears the entries of `cols` that read padding on the way (they are
/// scratch).
fn col2im(s: &ConvShape, cols: &mut [f32], image: &mut [f32], ld: usize) {
    let (p, sx) = (s.p(), s.stride[1]);
    if same_size(s) {
        shifted_rows(s, |row, range, src, dx| {
            let row = &mut cols[row * ld..row * ld + p];
            if dx != 0 {
                zero_wrapped(row, s.w, dx); // they would land on a neighbouring pixel row
            }
            let len = range.len();
            image[src..src + len].iter_mut().zip(&row[range]).for_each(|(d, v)| *d += v);
        });
        return;
    }
    for_each_run(s, |row, run| {
        let src = &cols[row * ld + run.col..][..run.len];
        let dst = &mut image[run.input..][..(run.len - 1) * sx + 1];
        if sx == 1 {
            dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
        } else {
            dst.iter_mut().step_by(sx).zip(src).for_each(|(d, v)| *d += v);
        }
    });
}

/// What the forward pass applies to each output value before it is written:
/// `relu(conv + bias[c_out] + residual)`, each part optional. A frozen BatchNorm folded
/// into the convolution (`model::conv_bn`) leaves exactly this behind.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// One value per output channel.
    pub bias: Option<&'a [f32]>,
    /// Added before the ReLU; the shape of the whole output `[n, c_out, oh, ow]`.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Nothing applied: the plain convolution.
    pub const NONE: Epilogue<'static> = Epilogue { bias: None, residual: None, relu: false };

    pub fn is_none(&self) -> bool {
        self.bias.is_none() && self.residual.is_none() && !self.relu
    }

    pub(super) fn check(&self, s: &ConvShape) {
        let [oh, ow] = s.out_hw();
        assert!(self.bias.is_none_or(|b| b.len() == s.c_out), "conv epilogue: one bias per output channel");
        assert!(
            self.residual.is_none_or(|r| r.len() == s.n * s.c_out * oh * ow),
            "conv epilogue: the residual has the output's shape"
        );
    }

    /// Applies the epilogue to the `[c_out, p]` output of image `image`, in place.
    pub(super) fn apply(&self, out: &mut [f32], image: usize, p: usize) {
        if self.is_none() {
            return;
        }
        let residual = self.residual.map(|r| &r[image * out.len()..(image + 1) * out.len()]);
        for (c, row) in out.chunks_exact_mut(p).enumerate() {
            self.finish(row, c, residual.map(|r| &r[c * p..(c + 1) * p]));
        }
    }

    /// Finishes, in place, values of output channel `channel`: `relu?(v + bias + residual)`,
    /// `residual` being the matching values of the residual. The one place the epilogue's
    /// arithmetic lives.
    pub(super) fn finish(&self, values: &mut [f32], channel: usize, residual: Option<&[f32]>) {
        let bias = self.bias.map_or(0.0, |b| b[channel]);
        match (residual, self.relu) {
            (Some(r), true) => values.iter_mut().zip(r).for_each(|(o, &r)| *o = (*o + bias + r).max(0.0)),
            (Some(r), false) => values.iter_mut().zip(r).for_each(|(o, &r)| *o += bias + r),
            (None, true) => values.iter_mut().for_each(|o| *o = (*o + bias).max(0.0)),
            (None, false) => values.iter_mut().for_each(|o| *o += bias),
        }
    }
}

/// Row-major matrix view for `gemm`: element (i, j) at `i * row + j * col`.
#[derive(Clone, Copy)]
pub(super) struct Mat {
    ptr: *const f32,
    row: isize,
    col: isize,
}

/// `dst[m, n] (+)= a[m, k] b[k, n]`, `dst` contiguous row-major, single-threaded (the
/// callers parallelise over images).
pub(super) fn gemm(dst: &mut [f32], accumulate: bool, m: usize, n: usize, k: usize, a: Mat, b: Mat) {
    debug_assert_eq!(dst.len(), m * n);
    gemm_strided(dst, n, accumulate, m, n, k, a, b)
}

/// [`gemm`] into a row-major `dst` whose rows are `dst_row` values apart (`>= n`).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_strided(
    dst: &mut [f32],
    dst_row: usize,
    accumulate: bool,
    m: usize,
    n: usize,
    k: usize,
    a: Mat,
    b: Mat,
) {
    assert!(dst_row >= n && dst.len() >= m.saturating_sub(1) * dst_row + n, "gemm: destination too small");
    // SAFETY: `dst` holds m*n elements; the callers build `a` and `b` from slices that
    // hold every element the strides reach (m x k and k x n).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row as isize,
            accumulate,
            a.ptr,
            a.col,
            a.row,
            b.ptr,
            b.col,
            b.row,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

pub(super) fn row_major(m: &[f32], cols: usize) -> Mat {
    Mat { ptr: m.as_ptr(), row: cols as isize, col: 1 }
}

/// A row-major matrix whose rows are `row` values apart.
pub(super) fn rows_apart(m: &[f32], row: usize) -> Mat {
    Mat { ptr: m.as_ptr(), row: row as isize, col: 1 }
}

/// Transpose of a row-major matrix whose rows are `cols` values apart.
fn transposed(m: &[f32], cols: usize) -> Mat {
    Mat { ptr: m.as_ptr(), row: 1, col: cols as isize }
}

/// `out[n, c_out, oh, ow] = conv(x, weight)`.
pub fn forward(s: &ConvShape, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_then(s, x, weight, &Epilogue::NONE)
}

/// [`forward`] with `epilogue` applied to each image's output while it is in cache.
pub fn forward_then(s: &ConvShape, x: &[f32], weight: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    let (k, p) = (s.k(), s.p());
    assert_eq!((x.len(), weight.len()), (s.n * s.image(), s.c_out * k), "conv forward: shapes");
    epilogue.check(s);
    let ld = leading(p);
    par_filled(s.n * s.c_out * p, s.c_out * p, |i, out| {
        with_scratch(k * ld, |cols| {
            im2col(s, &x[i * s.image()..(i + 1) * s.image()], cols, ld);
            gemm(out, false, s.c_out, p, k, row_major(weight, k), rows_apart(cols, ld));
        });
        epilogue.apply(out, i, p);
    })
}

/// Gradient of the loss with respect to the input, from the output gradient.
pub fn input_grad(s: &ConvShape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, p) = (s.k(), s.p());
    assert_eq!((grad.len(), weight.len()), (s.n * s.c_out * p, s.c_out * k), "conv input gradient: shapes");
    if centred_same_size(s) {
        let swapped = ConvShape { c_in: s.c_out, c_out: s.c_in, ..*s };
        return forward(&swapped, grad, &flipped_transposed(s, weight));
    }
    let ld = leading(p);
    par_filled(s.n * s.image(), s.image(), |i, image| {
        with_scratch(k * ld, |cols| {
            let g = &grad[i * s.c_out * p..(i + 1) * s.c_out * p];
            gemm_strided(cols, ld, false, k, p, s.c_out, transposed(weight, k), row_major(g, p));
            col2im(s, cols, image, ld);
        })
    })
}

/// Images whose weight-gradient contributions one task sums. The partial sums are added
/// in a fixed order, so the result does not depend on the thread count or on scheduling
/// (runs stay reproducible bit for bit).
const IMAGES_PER_PARTIAL: usize = 8;

/// Gradient of the loss with respect to the weight `[c_out, c_in, kh, kw]`.
pub fn weight_grad(s: &ConvShape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (k, p) = (s.k(), s.p());
    assert_eq!((x.len(), grad.len()), (s.n * s.image(), s.n * s.c_out * p), "conv weight gradient: shapes");
    let ld = leading(p);
    let partials: Vec<Vec<f32>> = x
        .par_chunks(s.image() * IMAGES_PER_PARTIAL)
        .zip(grad.par_chunks(s.c_out * p * IMAGES_PER_PARTIAL))
        .map(|(images, grads)| {
            let mut w_grad = vec![0.0; s.c_out * k];
            with_scratch(k * ld, |cols| {
                for (image, g) in images.chunks(s.image()).zip(grads.chunks(s.c_out * p)) {
                    im2col(s, image, cols, ld);
                    gemm(&mut w_grad, true, s.c_out, k, p, row_major(g, p), transposed(cols, ld));
                }
            });
            w_grad
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut total = partials.next().unwrap_or_else(|| vec![0.0; s.c_out * k]);
    for partial in partials {
        total.iter_mut().zip(&partial).for_each(|(t, v)| *t += v);
    }
    total
}

/// A stride-1 convolution with an odd kernel padded by half its size (`k = 2p + 1`: 3x3
/// with padding 1, 28 of ResNet-32's 31 layers). Its input gradient is the same
/// convolution of the output gradient with [`flipped_transposed`] filters, which runs as
/// the forward kernel: im2col copies instead of col2im's nine read-modify-write passes
/// over each image, 25-35% less time per input gradient (`m2m-bench conv`, issue #24).
fn centred_same_size(s: &ConvShape) -> bool {
    s.stride == [1, 1] && s.kernel.iter().zip(s.padding).all(|(&k, p)| k == 2 * p + 1)
}

/// The filters of the input gradient as a convolution: `w'[ci, co, y, x] = w[co, ci,
/// kh - 1 - y, kw - 1 - x]`.
pub(super) fn flipped_transposed(s: &ConvShape, weight: &[f32]) -> Vec<f32> {
    let kk = s.kernel[0] * s.kernel[1];
    let mut out = vec![0.0; weight.len()];
    for co in 0..s.c_out {
        for ci in 0..s.c_in {
            let src = &weight[(co * s.c_in + ci) * kk..][..kk];
            let dst = &mut out[(ci * s.c_out + co) * kk..][..kk];
            dst.iter_mut().zip(src.iter().rev()).for_each(|(d, v)| *d = *v);
        }
    }
    out
}
