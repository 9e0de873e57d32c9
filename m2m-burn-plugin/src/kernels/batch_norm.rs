//! BatchNorm over contiguous NCHW `f32` slices, with what follows it in a ResNet (a ReLU,
//! or a residual add and a ReLU) in the same pass. Statistics and parameter gradients are
//! per channel (rayon over channels); element-wise passes are rayon over images. Sums run
//! in a fixed order, so results do not depend on the thread count.
//!
//! Every map has the form `y = a[c] * x + b[c]` per channel: the forward pass in both
//! modes (`a = gamma / std`, `b = beta - mean * a`) and the input gradient (see
//! [`input_grad`]), so one element-wise kernel serves them all.

use rayon::prelude::*;

use crate::kernels::buffers::par_filled;

/// A `[n, c, h, w]` tensor as `n * c` blocks of `hw` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnShape {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
}

impl BnShape {
    pub fn len(&self) -> usize {
        self.n * self.c * self.hw
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel: `n * h * w`.
    pub fn count(&self) -> usize {
        self.n * self.hw
    }

    fn image(&self) -> usize {
        self.c * self.hw
    }

    /// The `hw` values of channel `c` in every image.
    fn blocks<'a>(&self, t: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (image, hw) = (self.image(), self.hw);
        t.chunks_exact(image).map(move |img| &img[c * hw..(c + 1) * hw])
    }
}

/// What follows the normalisation, fused into the same pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    None,
    Relu,
    /// `relu(y + residual)`: the end of a ResNet basic block.
    AddRelu,
}

/// Sum of `f(i)` over a block, in 8 lanes (vectorised by the compiler), in `f64` across
/// lanes so that sums over ~100k values keep their precision.
#[inline]
fn lane_sum(len: usize, f: impl Fn(usize) -> f32) -> f64 {
    let mut lanes = [0f32; 8];
    let whole = len / 8 * 8;
    for i in (0..whole).step_by(8) {
        for (l, lane) in lanes.iter_mut().enumerate() {
            *lane += f(i + l);
        }
    }
    let tail: f32 = (whole..len).map(&f).sum();
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64
}

/// The per-channel affine map `y = a * x + b` of a normalisation with these statistics:
/// `a = gamma / sqrt(var + eps)` (the root in `f64`), `b = beta - mean * a`. The fused op
/// and the folded convolution (`model::conv_bn`) both use it, so they agree to rounding.
pub fn affine_map(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let inv_std = inverse_std(var, epsilon);
    let a: Vec<f32> = gamma.iter().zip(&inv_std).map(|(g, i)| g * i).collect();
    let b = beta.iter().zip(mean).zip(&a).map(|((beta, m), a)| beta - m * a).collect();
    (a, b)
}

/// `1 / sqrt(var + eps)` per channel, the root taken in `f64`.
pub fn inverse_std(var: &[f32], epsilon: f64) -> Vec<f32> {
    var.iter().map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32).collect()
}

/// Per-channel batch mean and biased variance (two passes: the mean, then the squared
/// deviations from it, which avoids the cancellation of `E[x^2] - E[x]^2`).
pub fn batch_stats(s: &BnShape, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), s.len(), "batch norm statistics: shape");
    let count = s.count().max(1) as f64;
    (0..s.c)
        .into_par_iter()
        .map(|c| {
            let mean = s.blocks(x, c).map(|b| lane_sum(b.len(), |i| b[i])).sum::<f64>() / count;
            let m = mean as f32;
            let var = s.blocks(x, c).map(|b| lane_sum(b.len(), |i| (b[i] - m) * (b[i] - m))).sum::<f64>() / count;
            (m, var as f32)
        })
        .unzip()
}

/// `epilogue(a[c] * x + b[c])`, with `residual` added before the ReLU for
/// [`Epilogue::AddRelu`].
pub fn affine(s: &BnShape, x: &[f32], a: &[f32], b: &[f32], epilogue: Epilogue, residual: Option<&[f32]>) -> Vec<f32> {
    assert_eq!((x.len(), a.len(), b.len()), (s.len(), s.c, s.c), "batch norm affine map: shapes");
    assert_eq!(
        residual.map(<[f32]>::len),
        (epilogue == Epilogue::AddRelu).then_some(s.len()),
        "batch norm residual: shape"
    );
    let hw = s.hw.max(1);
    par_filled(s.len(), s.image(), |i, image| {
        for (c, out) in image.chunks_exact_mut(hw).enumerate() {
            let at = i * s.image() + c * hw;
            let src = &x[at..at + hw];
            let (a, b) = (a[c], b[c]);
            match (epilogue, residual) {
                (Epilogue::None, _) => out.iter_mut().zip(src).for_each(|(o, &v)| *o = a * v + b),
                (Epilogue::Relu, _) => out.iter_mut().zip(src).for_each(|(o, &v)| *o = (a * v + b).max(0.0)),
                (Epilogue::AddRelu, Some(r)) => {
                    let r = &r[at..at + hw];
                    out.iter_mut().zip(src).zip(r).for_each(|((o, &v), &r)| *o = (a * v + b + r).max(0.0))
                }
                (Epilogue::AddRelu, None) => unreachable!("checked above"),
            }
        }
    })
}

/// The gradient at the normalisation's output from the gradient `g` at the epilogue's
/// output `y`: `g` where `y > 0`, else 0 (ReLU). With a residual this is its gradient too.
pub fn relu_grad(g: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(g.len(), y.len(), "relu gradient: shapes");
    const CHUNK: usize = 1 << 14;
    par_filled(g.len(), CHUNK, |i, out| {
        let at = i * CHUNK;
        let (g, y) = (&g[at..at + out.len()], &y[at..at + out.len()]);
        out.iter_mut().zip(g.iter().zip(y)).for_each(|(o, (&g, &y))| *o = if y > 0.0 { g } else { 0.0 });
    })
}

/// Per-channel `sum(g)` and `sum(g * (x - mean))`: the gradients of beta, and of gamma
/// times the standard deviation.
pub fn grad_sums(s: &BnShape, g: &[f32], x: &[f32], mean: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!((g.len(), x.len(), mean.len()), (s.len(), s.len(), s.c), "batch norm gradient sums: shapes");
    (0..s.c)
        .into_par_iter()
        .map(|c| {
            let m = mean[c];
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for (gb, xb) in s.blocks(g, c).zip(s.blocks(x, c)) {
                sum += lane_sum(gb.len(), |i| gb[i]);
                dot += lane_sum(gb.len(), |i| gb[i] * (xb[i] - m));
            }
            (sum as f32, dot as f32)
        })
        .unzip()
}

/// What the input gradient needs of the forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// Batch mean in training mode, running mean in evaluation mode.
    pub mean: Vec<f32>,
    /// `1 / sqrt(var + eps)` of the same statistics.
    pub inv_std: Vec<f32>,
    pub gamma: Vec<f32>,
    /// Batch statistics (their gradient flows back to the input) or fixed ones.
    pub batch_statistics: bool,
}

/// The input gradient from the gradient `g` at the normalisation's output and the
/// [`grad_sums`] of `g`. With fixed statistics it is `g * gamma / std`; with batch
/// statistics (`m` values per channel, `xhat = (x - mean) / std`)
/// `gamma / std * (g - sum / m - xhat * dot / (std * m))`, which is again
/// `a[c] * g + (b[c] * x + d[c])`, so one pass over `g` and `x` computes it.
pub fn input_grad(s: &BnShape, g: &[f32], x: &[f32], norm: &Normalized, sums: (&[f32], &[f32])) -> Vec<f32> {
    let (sum, dot) = sums;
    assert_eq!(
        (g.len(), x.len(), sum.len(), dot.len()),
        (s.len(), s.len(), s.c, s.c),
        "batch norm input gradient: shapes"
    );
    let m = s.count().max(1) as f32;
    let a: Vec<f32> = (0..s.c).map(|c| norm.gamma[c] * norm.inv_std[c]).collect();
    if !norm.batch_statistics {
        return affine(s, g, &a, &vec![0.0; s.c], Epilogue::None, None);
    }
    let b: Vec<f32> = (0..s.c).map(|c| -a[c] * norm.inv_std[c] * norm.inv_std[c] * dot[c] / m).collect();
    let d: Vec<f32> = (0..s.c).map(|c| -a[c] * sum[c] / m - b[c] * norm.mean[c]).collect();
    let hw = s.hw.max(1);
    par_filled(s.len(), s.image(), |i, image| {
        for (c, out) in image.chunks_exact_mut(hw).enumerate() {
            let at = i * s.image() + c * hw;
            let (gs, xs) = (&g[at..at + hw], &x[at..at + hw]);
            let (a, b, d) = (a[c], b[c], d[c]);
            out.iter_mut().zip(gs.iter().zip(xs)).for_each(|(o, (&g, &x))| *o = a * g + b * x + d);
        }
    })
}
