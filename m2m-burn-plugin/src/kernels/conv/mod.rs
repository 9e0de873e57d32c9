//! The convolutions of our models. On the CPU backend they run our own kernels
//! (`kernels.rs`: im2col + one `gemm` per image, parallel over the batch) with their own
//! backward pass, because burn-flex 0.21's convolution kernels set the CPU speed: its
//! weight gradient (burn's generic `conv2d_weight_backward`) and input gradient
//! (`conv_transpose2d`, serial over the batch) are 3-5x slower than PyTorch's
//! (`m2m-bench conv`, docs/benchmarks.md). Other backends (CUDA) and convolutions our
//! kernels do not cover (bias, groups, dilation, asymmetric padding) use burn's.
//!
//! The input gradient of a 3x3 stride-1 layer runs as a forward convolution with the
//! flipped filters (`slices::input_grad`). A frozen BatchNorm after a convolution is
//! folded into it by `folded.rs` (`model::conv_bn`). (A Winograd F(2x2, 3x3) kernel was
//! tried and removed: slower than im2col + gemm on every shape measured, docs/benchmarks.md.)
//!
//! The dispatch is on the concrete backend type, so models stay generic over
//! `B: Backend` and users' code sees no extra trait bound.

pub(crate) mod folded;
pub mod slices;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};

use self::slices::{ConvShape, Epilogue};
use super::cpu::{cast, contiguous, enabled, from_vec, same, slice, FlexFloat, Kernel};
use crate::backend::Cpu;

/// `conv.forward(x)`, on our kernels where the backend is the CPU one.
pub fn conv2d<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let Some(geometry) = Geometry::of(conv).filter(|_| enabled(Kernel::Conv)) else {
        return conv.forward(x);
    };
    let weight = conv.weight.val();
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return conv.forward(x);
    }
    let x = match cast::<_, Tensor<Cpu, 4>>(x) {
        Ok(x) => {
            return same(autodiff_conv2d(x, same(weight), geometry));
        }
        Err(x) => x,
    };
    match cast::<_, Tensor<Flex, 4>>(x) {
        Ok(x) => {
            let weight: Tensor<Flex, 4> = same(weight);
            let out = flex_forward(&x.into_primitive().tensor(), &weight.into_primitive().tensor(), geometry);
            same(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(out)))
        }
        Err(x) => conv.forward(x),
    }
}

/// What our kernels support of a `Conv2d`: no bias (but see [`Geometry::of_filters`]),
/// one group, dilation 1, symmetric explicit padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Geometry {
    fn of<B: Backend>(conv: &Conv2d<B>) -> Option<Self> {
        Self::of_filters(conv).filter(|_| conv.bias.is_none())
    }

    /// The geometry of the filters alone, for a caller that applies the bias itself (a
    /// folded BatchNorm's epilogue).
    fn of_filters<B: Backend>(conv: &Conv2d<B>) -> Option<Self> {
        let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
            return None;
        };
        let supported = conv.groups == 1 && conv.dilation == [1, 1] && top == bottom && left == right;
        supported.then_some(Self { kernel: conv.kernel_size, stride: conv.stride, padding: [top, left] })
    }

    fn shape(&self, x: [usize; 4], c_out: usize) -> ConvShape {
        let [n, c_in, h, w] = x;
        ConvShape { n, c_in, h, w, c_out, kernel: self.kernel, stride: self.stride, padding: self.padding }
    }
}

/// The forward kernel for `s` on host slices, with `epilogue` applied to the output.
pub fn host_forward(s: &ConvShape, x: &[f32], weight: &[f32], epilogue: &Epilogue) -> Vec<f32> {
    slices::forward_then(s, x, weight, epilogue)
}

/// The input-gradient kernel for `s` on host slices.
pub fn host_input_grad(s: &ConvShape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    slices::input_grad(s, grad, weight)
}

fn flex_forward(x: &FlexFloat, weight: &FlexFloat, geometry: Geometry) -> FlexFloat {
    let ((x, x_dims), (w, w_dims)) = (contiguous::<4>(x), contiguous::<4>(weight));
    let shape = geometry.shape(x_dims, w_dims[0]);
    let [oh, ow] = shape.out_hw();
    from_vec(host_forward(&shape, slice(&x), slice(&w), &Epilogue::NONE), [shape.n, shape.c_out, oh, ow])
}

/// The backward step of our convolution: input and weight gradients, each only when
/// its parent is tracked (M2m's translation needs only the input gradient).
#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let (grad, _) = contiguous::<4>(&grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state, geometry) = ops.state;
        let (x, x_dims) = contiguous::<4>(&checkpointer.retrieve_node_output::<FlexFloat>(x_state));
        let (weight, w_dims) = contiguous::<4>(&checkpointer.retrieve_node_output::<FlexFloat>(weight_state));
        let shape = geometry.shape(x_dims, w_dims[0]);
        if let Some(node) = node_x {
            let x_grad = host_input_grad(&shape, slice(&grad), slice(&weight));
            grads.register::<Flex>(node.id, from_vec(x_grad, x_dims));
        }
        if let Some(node) = node_weight {
            let w_grad = slices::weight_grad(&shape, slice(&x), slice(&grad));
            grads.register::<Flex>(node.id, from_vec(w_grad, w_dims));
        }
    }
}

fn autodiff_conv2d(x: Tensor<Cpu, 4>, weight: Tensor<Cpu, 4>, geometry: Geometry) -> Tensor<Cpu, 4> {
    let (x, weight) = (x.into_primitive().tensor(), weight.into_primitive().tensor());
    let out =
        match ConvBackward.prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()]).compute_bound().stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), geometry);
                prep.finish(state, flex_forward(&x.primitive, &weight.primitive, geometry))
            }
            OpsKind::UnTracked(prep) => prep.finish(flex_forward(&x.primitive, &weight.primitive, geometry)),
        };
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
