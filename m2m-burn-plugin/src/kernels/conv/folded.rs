//! A convolution with constant filters and a bias (a frozen BatchNorm folded in, see
//! `model::conv_bn`), ending in a ReLU or a residual add and a ReLU: one op on the CPU
//! backend, whose epilogue is applied to each image's output while it is in cache. Its
//! backward step gives the gradients of the input and of the residual only: the filters
//! are constants here, and M2m's translation needs nothing else.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};

use super::slices::{ConvShape, Epilogue};
use super::{host_forward, host_input_grad, Geometry};
use crate::backend::Cpu;
use crate::kernels::batch_norm::relu_grad;
use crate::kernels::cpu::{cast, contiguous, from_vec, same, slice, FlexFloat};

/// Filters and bias that replace a convolution and the frozen BatchNorm after it.
#[derive(Debug, Clone)]
pub(crate) struct Folded {
    /// `[c_out, c_in, kh, kw]`: the convolution's filters, output channel `c` scaled by the
    /// BatchNorm's `a[c]`.
    pub weight: Arc<Vec<f32>>,
    /// The BatchNorm's `b[c]`.
    pub bias: Vec<f32>,
    /// A ReLU at the end (after the residual, when there is one).
    pub relu: bool,
}

/// `relu?(conv(x, folded.weight) + folded.bias + residual?)` on our kernels when `B` is the
/// CPU backend and the layer is one they cover; the inputs back otherwise.
#[allow(clippy::type_complexity)]
pub(crate) fn forward<B: Backend>(
    conv: &Conv2d<B>,
    folded: &Folded,
    x: Tensor<B, 4>,
    residual: Option<Tensor<B, 4>>,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Option<Tensor<B, 4>>)> {
    let Some(geometry) = Geometry::of_filters(conv) else {
        return Err((x, residual));
    };
    let out_dims = |x: &Tensor<B, 4>| {
        let shape = geometry.shape(x.dims(), folded.bias.len());
        let [oh, ow] = shape.out_hw();
        [shape.n, shape.c_out, oh, ow]
    };
    let residual_fits = residual.as_ref().is_none_or(|r| r.dtype() == DType::F32 && r.dims() == out_dims(&x));
    if x.dtype() != DType::F32 || !residual_fits {
        return Err((x, residual));
    }
    let x = match cast::<_, Tensor<Cpu, 4>>(x) {
        Ok(x) => return Ok(same(autodiff(x, residual.map(same), folded, geometry))),
        Err(x) => x,
    };
    match cast::<_, Tensor<Flex, 4>>(x) {
        Ok(x) => {
            let residual: Option<Tensor<Flex, 4>> = residual.map(same);
            let residual = residual.map(|r| r.into_primitive().tensor());
            let y = compute(&x.into_primitive().tensor(), residual.as_ref(), folded, geometry).0;
            Ok(same(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y))))
        }
        Err(x) => Err((x, residual)),
    }
}

/// The output and the shape it was computed for.
fn compute(x: &FlexFloat, residual: Option<&FlexFloat>, folded: &Folded, geometry: Geometry) -> (FlexFloat, ConvShape) {
    let (x, x_dims) = contiguous::<4>(x);
    let shape = geometry.shape(x_dims, folded.bias.len());
    let residual = residual.map(|r| contiguous::<4>(r).0);
    let epilogue = Epilogue { bias: Some(&folded.bias), residual: residual.as_ref().map(slice), relu: folded.relu };
    let [oh, ow] = shape.out_hw();
    let y = from_vec(host_forward(&shape, slice(&x), &folded.weight, &epilogue), [shape.n, shape.c_out, oh, ow]);
    (y, shape)
}

/// What the backward step keeps: the filters, the output when a ReLU ends the op (its
/// sign is the ReLU's gradient), and the shape.
#[derive(Debug, Clone)]
struct FoldedState {
    weight: Arc<Vec<f32>>,
    y: Option<FlexFloat>,
    shape: ConvShape,
}

/// Parents: the input, and the residual when there is one.
#[derive(Debug)]
struct FoldedBackward;

impl<const N: usize> Backward<Flex, N> for FoldedBackward {
    type State = FoldedState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let FoldedState { weight, y, shape } = ops.state;
        let (g, dims) = contiguous::<4>(&grads.consume::<Flex>(&ops.node));
        let parent = |i: usize| ops.parents.get(i).cloned().flatten();
        // The gradient before the ReLU: the convolution's output gradient and the residual's.
        let gz = y.map(|y| relu_grad(slice(&g), slice(&contiguous::<4>(&y).0)));
        let gz_slice = gz.as_deref().unwrap_or_else(|| slice(&g));
        if let Some(node) = parent(0) {
            let dx = host_input_grad(&shape, gz_slice, &weight);
            grads.register::<Flex>(node.id, from_vec(dx, [shape.n, shape.c_in, shape.h, shape.w]));
        }
        if let Some(node) = parent(1) {
            let gz = gz.unwrap_or_else(|| slice(&g).to_vec());
            grads.register::<Flex>(node.id, from_vec(gz, dims));
        }
    }
}

macro_rules! track {
    ($nodes:expr, $state:expr, $y:expr) => {
        match FoldedBackward.prepare::<NoCheckpointing>($nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish($state, $y),
            OpsKind::UnTracked(prep) => prep.finish($y),
        }
    };
}

fn autodiff(
    x: Tensor<Cpu, 4>,
    residual: Option<Tensor<Cpu, 4>>,
    folded: &Folded,
    geometry: Geometry,
) -> Tensor<Cpu, 4> {
    let x = x.into_primitive().tensor();
    let residual = residual.map(|r| r.into_primitive().tensor());
    let (y, shape) = compute(&x.primitive, residual.as_ref().map(|r| &r.primitive), folded, geometry);
    let state = FoldedState { weight: folded.weight.clone(), y: folded.relu.then(|| y.clone()), shape };
    let out = match residual {
        Some(r) => track!([x.node, r.node], state, y),
        None => track!([x.node], state, y),
    };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
