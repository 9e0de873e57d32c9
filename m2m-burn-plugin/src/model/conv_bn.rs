//! A convolution followed by BatchNorm and what comes after it in our models (a ReLU, or a
//! residual add and a ReLU): the unit that ResNet-32 and the small CNN are made of.
//!
//! Where the BatchNorm is *frozen*, meaning it normalises with its running statistics
//! (evaluation mode, or a backend without autodiff) and neither layer's parameters take a
//! gradient, it is an affine map per output channel, `a * y + b`. Then the pair is one
//! convolution with filters scaled by `a` and a bias `b`, and the epilogue is applied as
//! each image's output is written: no BatchNorm pass forward or backward. That is the case
//! in 20 of the 21 network passes of an M2m iteration (the translation runs f and g
//! frozen, `M2m::translate_batch`) and in evaluation. Everything else (training, or a
//! model whose parameters are tracked in evaluation mode, whose gradients folding would
//! drop) runs the two layers as they are.

use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use super::{BatchNorm2d, Mode, Then};
use crate::kernels::conv::{conv2d, folded};
use crate::kernels::cpu::{enabled, is_cpu, Kernel};

/// `then(bn(conv(x)))`, folded into one convolution where the BatchNorm is frozen and the
/// backend is the CPU one.
pub fn conv_bn<B: Backend>(
    conv: &Conv2d<B>,
    bn: &BatchNorm2d<B>,
    x: Tensor<B, 4>,
    mode: Mode,
    then: Then<B>,
) -> Tensor<B, 4> {
    let running_statistics = mode == Mode::Eval || !B::ad_enabled(&x.device());
    let foldable = running_statistics && is_cpu::<B>() && enabled(Kernel::Fold) && !in_unfolded() && frozen(conv, bn);
    let Some(folded) = foldable.then(|| fold(conv, bn, !matches!(then, Then::Nothing))).flatten() else {
        return bn.forward_then(conv2d(conv, x), mode, then);
    };
    let residual = match &then {
        Then::AddRelu(residual) => Some(residual.clone()),
        Then::Nothing | Then::Relu => None,
    };
    match folded::forward(conv, &folded, x, residual) {
        Ok(y) => y,
        // A layer our kernels do not cover (bias, groups, dilation), or another dtype.
        Err((x, _)) => bn.forward_then(conv2d(conv, x), mode, then),
    }
}

thread_local! {
    static UNFOLDED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with no BatchNorm folded on this thread: every pair runs as the two layers it
/// is. The reference that the folded path is tested against, and a way to rule folding out
/// when a result looks wrong (`M2M_CPU_KERNELS` does it for a whole process).
pub fn unfolded<R>(f: impl FnOnce() -> R) -> R {
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            UNFOLDED.with(|d| d.set(d.get() - 1));
        }
    }
    UNFOLDED.with(|d| d.set(d.get() + 1));
    let _exit = Exit;
    f()
}

fn in_unfolded() -> bool {
    UNFOLDED.with(|d| d.get() > 0)
}

/// Neither layer's parameters take a gradient (M2m's f and g are `no_grad` copies; a
/// backend without autodiff tracks nothing).
fn frozen<B: Backend>(conv: &Conv2d<B>, bn: &BatchNorm2d<B>) -> bool {
    let conv_tracked =
        conv.weight.val().is_require_grad() || conv.bias.as_ref().is_some_and(|b| b.val().is_require_grad());
    !conv_tracked && !bn.is_require_grad()
}

/// The convolution's filters scaled by the BatchNorm's `a` per output channel, its bias
/// (if any) mapped through `a` and shifted by `b`; `None` for filters that are not `f32`.
fn fold<B: Backend>(conv: &Conv2d<B>, bn: &BatchNorm2d<B>, relu: bool) -> Option<folded::Folded> {
    let weight = conv.weight.val();
    if weight.dtype() != DType::F32 {
        return None;
    }
    let c_out = weight.dims()[0];
    let mut weight = weight.into_data().into_vec::<f32>().ok()?;
    let (a, b) = bn.running_affine();
    let per_channel = weight.len() / c_out.max(1);
    for (filters, a) in weight.chunks_exact_mut(per_channel).zip(&a) {
        filters.iter_mut().for_each(|w| *w *= a);
    }
    let bias = match &conv.bias {
        Some(bias) => {
            let bias = bias.val().into_data().convert::<f32>().into_vec::<f32>().ok()?;
            bias.iter().zip(&a).zip(&b).map(|((c, a), b)| c * a + b).collect()
        }
        None => b,
    };
    Some(folded::Folded { weight: std::sync::Arc::new(weight), bias, relu })
}
