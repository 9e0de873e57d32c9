//! Winograd F(2x2, 3x3) for the 3x3, stride-1, padding-1 convolutions that make up 28 of
//! ResNet-32's 31 layers: each 4x4 input tile and each 3x3 filter are transformed
//! (`V = Bᵀ d B`, `U = G g Gᵀ`), the 16 transformed positions are 16 independent matrix
//! products over channels (`M[ξ] = U[ξ] V[ξ]`), and `Y = Aᵀ M A` gives a 2x2 output tile.
//! That is 16 multiplications per 4 outputs and input channel instead of 36: 2.25x fewer
//! than the direct kernel's `gemm`, and a 4x (not 9x) expansion of the input instead of
//! im2col's column matrix.
//!
//! The input gradient of such a layer is the same convolution of the output gradient with
//! the filters flipped and their channel axes swapped, so it runs on the same kernel.
//!
//! Images are processed in chunks of about `TILES_PER_CHUNK` tiles (a chunk's size
//! depends on the shape only), rayon over chunks: every output value is computed by the
//! same arithmetic in the same order whatever the thread count. Against the direct kernel
//! the results differ by rounding only (the transforms add and scale by 1/2).

use super::kernels::{flipped_transposed, gemm_strided, leading, row_major, rows_apart, ConvShape, Epilogue};
use crate::model::buffers::{par_filled, with_scratch};

/// Transformed positions per tile: (2 + 3 - 1)².
const POSITIONS: usize = 16;

/// Tiles that one task transforms and multiplies together: enough columns for `gemm` to
/// run at speed on 16-channel layers, small enough for the chunk's transformed input and
/// products to stay in a core's L2 cache on 64-channel layers.
const TILES_PER_CHUNK: usize = 256;

/// Whether the layer is one this kernel computes: 3x3, stride 1, padding 1.
pub fn applies(s: &ConvShape) -> bool {
    s.kernel == [3, 3] && s.stride == [1, 1] && s.padding == [1, 1]
}

fn tiles(s: &ConvShape) -> [usize; 2] {
    [s.h.div_ceil(2), s.w.div_ceil(2)]
}

/// `U = G g Gᵀ` of every filter of `weight [c_out, c_in, 3, 3]`, laid out as 16 matrices
/// `[c_out, c_in]` (one per transformed position).
pub fn transform_weight(weight: &[f32], c_out: usize, c_in: usize) -> Vec<f32> {
    assert_eq!(weight.len(), c_out * c_in * 9, "winograd weight transform: shape");
    let mut u = vec![0.0; POSITIONS * c_out * c_in];
    for (filter, g) in weight.chunks_exact(9).enumerate() {
        // G g, 4x3: G = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1].
        let mut gg = [[0.0f32; 3]; 4];
        for j in 0..3 {
            let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
            gg[0][j] = g0;
            gg[1][j] = 0.5 * (g0 + g1 + g2);
            gg[2][j] = 0.5 * (g0 - g1 + g2);
            gg[3][j] = g2;
        }
        for (i, [a, b, c]) in gg.into_iter().enumerate() {
            let row = [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
            for (j, v) in row.into_iter().enumerate() {
                u[(i * 4 + j) * c_out * c_in + filter] = v;
            }
        }
    }
    u
}

/// `conv(x, weight)` through the transformed filters `u` ([`transform_weight`]), with the
/// epilogue applied as each output tile is written.
pub fn forward(s: &ConvShape, x: &[f32], u: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    assert!(applies(s), "winograd: a 3x3, stride-1, padding-1 convolution");
    assert_eq!((x.len(), u.len()), (s.n * s.image(), POSITIONS * s.c_out * s.c_in), "winograd forward: shapes");
    epilogue.check(s);
    let [th, tw] = tiles(s);
    let per_image = th * tw;
    let images_per_chunk = (TILES_PER_CHUNK / per_image).clamp(1, s.n.max(1));
    let out_image = s.c_out * s.h * s.w;
    par_filled(s.n * out_image, images_per_chunk * out_image, |chunk, out| {
        let first = chunk * images_per_chunk;
        let images = out.len() / out_image;
        let t = images * per_image;
        let ld = leading(t);
        with_scratch(POSITIONS * (s.c_in + s.c_out) * ld, |scratch| {
            let (v, m) = scratch.split_at_mut(POSITIONS * s.c_in * ld);
            for i in 0..images {
                let image = &x[(first + i) * s.image()..][..s.image()];
                transform_input(s, image, v, i * per_image, ld);
            }
            let (ci, co) = (s.c_in, s.c_out);
            for xi in 0..POSITIONS {
                let a = row_major(&u[xi * co * ci..(xi + 1) * co * ci], ci);
                let b = rows_apart(&v[xi * ci * ld..(xi + 1) * ci * ld], ld);
                gemm_strided(&mut m[xi * co * ld..(xi + 1) * co * ld], ld, false, co, t, ci, a, b);
            }
            for i in 0..images {
                let dst = &mut out[i * out_image..(i + 1) * out_image];
                transform_output(s, m, i * per_image, ld, dst, epilogue, first + i);
            }
        })
    })
}

/// The input gradient from the output gradient `grad` and the filters `weight` (not
/// transformed): the forward kernel on the flipped, transposed filters.
pub fn input_grad(s: &ConvShape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let u = transform_weight(&flipped_transposed(s, weight), s.c_in, s.c_out);
    input_grad_transformed(s, grad, &u)
}

/// [`input_grad`] with the gradient's filters already flipped, transposed and transformed.
pub fn input_grad_transformed(s: &ConvShape, grad: &[f32], u: &[f32]) -> Vec<f32> {
    let swapped = ConvShape { c_in: s.c_out, c_out: s.c_in, ..*s };
    forward(&swapped, grad, u, &Epilogue::NONE)
}

/// Writes `V = Bᵀ d B` of every 4x4 tile of one image into columns `t0..` of the 16
/// matrices `v[ξ] = [c_in, t]` (rows `t` values apart). Tile `(ty, tx)` reads rows
/// `2ty-1 .. 2ty+3` and columns `2tx-1 .. 2tx+3` (zeros outside the image). One strip of
/// tiles at a time: `Bᵀ d` over the strip's padded rows, then `(Bᵀ d) B` per tile, both as
/// loops over the strip that the compiler vectorises.
fn transform_input(s: &ConvShape, image: &[f32], v: &mut [f32], t0: usize, t: usize) {
    let (h, w) = (s.h, s.w);
    let [th, tw] = tiles(s);
    let wp = 2 * tw + 2; // padded columns -1 .. 2tw + 1
    let position = s.c_in * t; // distance between the matrices of two positions
    let mut strip = vec![0.0f32; 4 * wp];
    let mut bd = vec![0.0f32; 4 * wp];
    for ci in 0..s.c_in {
        let plane = &image[ci * h * w..(ci + 1) * h * w];
        for ty in 0..th {
            for (r, row) in strip.chunks_exact_mut(wp).enumerate() {
                let y = (2 * ty + r) as isize - 1;
                row.fill(0.0);
                if y >= 0 && (y as usize) < h {
                    row[1..1 + w].copy_from_slice(&plane[y as usize * w..][..w]);
                }
            }
            let (d0, rest) = strip.split_at(wp);
            let (d1, rest) = rest.split_at(wp);
            let (d2, d3) = rest.split_at(wp);
            let (b0, rest) = bd.split_at_mut(wp);
            let (b1, rest) = rest.split_at_mut(wp);
            let (b2, b3) = rest.split_at_mut(wp);
            for x in 0..wp {
                b0[x] = d0[x] - d2[x];
                b1[x] = d1[x] + d2[x];
                b2[x] = d2[x] - d1[x];
                b3[x] = d1[x] - d3[x];
            }
            let at = ci * t + t0 + ty * tw;
            for (r, b) in bd.chunks_exact(wp).enumerate() {
                let base = r * 4 * position + at;
                let (v0, rest) = v[base..].split_at_mut(position);
                let (v1, rest) = rest.split_at_mut(position);
                let (v2, v3) = rest.split_at_mut(position);
                for tx in 0..tw {
                    let (e, f, g, k) = (b[2 * tx], b[2 * tx + 1], b[2 * tx + 2], b[2 * tx + 3]);
                    v0[tx] = e - g;
                    v1[tx] = f + g;
                    v2[tx] = g - f;
                    v3[tx] = f - k;
                }
            }
        }
    }
}

/// Writes `Y = Aᵀ M A` of every tile of one image (columns `t0..` of the 16 product
/// matrices `m[ξ] = [c_out, t]`, rows `t` values apart) into its output `[c_out, h, w]`,
/// through the epilogue, a strip of tiles at a time as in [`transform_input`].
fn transform_output(s: &ConvShape, m: &[f32], t0: usize, t: usize, out: &mut [f32], epilogue: &Epilogue, image: usize) {
    let (h, w) = (s.h, s.w);
    let [th, tw] = tiles(s);
    let position = s.c_out * t;
    let plane_len = h * w;
    let residual = epilogue.residual.map(|r| &r[image * out.len()..(image + 1) * out.len()]);
    // Aᵀ M per strip: am[r][j] over the strip's tiles, r in 0..2, j in 0..4.
    let mut am = vec![0.0f32; 8 * tw];
    let mut line = vec![0.0f32; 2 * tw];
    for co in 0..s.c_out {
        let plane = &mut out[co * plane_len..(co + 1) * plane_len];
        let residual = residual.map(|r| &r[co * plane_len..(co + 1) * plane_len]);
        for ty in 0..th {
            let at = co * t + t0 + ty * tw;
            let row = |r: usize, j: usize| &m[(r * 4 + j) * position + at..][..tw];
            for j in 0..4 {
                let (m0, m1, m2, m3) = (row(0, j), row(1, j), row(2, j), row(3, j));
                let (a0, a1) = am.split_at_mut(4 * tw);
                let (a0, a1) = (&mut a0[j * tw..(j + 1) * tw], &mut a1[j * tw..(j + 1) * tw]);
                for tx in 0..tw {
                    a0[tx] = m0[tx] + m1[tx] + m2[tx];
                    a1[tx] = m1[tx] - m2[tx] - m3[tx];
                }
            }
            for r in 0..2 {
                let y = 2 * ty + r;
                if y >= h {
                    continue;
                }
                let a = &am[r * 4 * tw..(r + 1) * 4 * tw];
                let (a0, a1, a2, a3) = (&a[..tw], &a[tw..2 * tw], &a[2 * tw..3 * tw], &a[3 * tw..]);
                for tx in 0..tw {
                    line[2 * tx] = a0[tx] + a1[tx] + a2[tx];
                    line[2 * tx + 1] = a1[tx] - a2[tx] - a3[tx];
                }
                let dst = &mut plane[y * w..(y + 1) * w];
                dst.copy_from_slice(&line[..w]);
                epilogue.finish(dst, co, residual.map(|r| &r[y * w..(y + 1) * w]));
            }
        }
    }
}
