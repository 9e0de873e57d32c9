//! The fused BatchNorm op of the CPU backend: [`kernels`] inside burn, with its own
//! backward step under Autodiff (gradients of input, gamma, beta and residual, each only
//! when its parent is tracked: M2m's frozen f and g need only the input's), and the
//! evaluation forward on Flex alone.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorPrimitive};

use super::{BatchNorm2d, Then};
use crate::backend::Cpu;
use crate::kernels::batch_norm::{self as kernels, BnShape, Epilogue, Normalized};
use crate::kernels::cpu::{cast, contiguous, from_vec, same, slice, FlexFloat};

/// The layer on our kernels when `B` is the CPU backend (with or without Autodiff); the
/// input back otherwise. Updates the running statistics when `batch_statistics`.
pub(super) fn forward<B: Backend>(
    bn: &BatchNorm2d<B>,
    x: Tensor<B, 4>,
    batch_statistics: bool,
    then: Then<B>,
) -> Result<Tensor<B, 4>, (Tensor<B, 4>, Then<B>)> {
    let running = || (!batch_statistics).then(|| bn.running_statistics());
    let device = x.device();
    let [n, _, h, w] = x.dims();
    let x = match cast::<_, Tensor<Cpu, 4>>(x) {
        Ok(x) => {
            let (epilogue, residual) = split(then);
            let residual = residual.map(same::<_, Tensor<Cpu, 4>>);
            let (gamma, beta) = (same::<_, Tensor<Cpu, 1>>(bn.gamma.val()), same::<_, Tensor<Cpu, 1>>(bn.beta.val()));
            let (y, batch) = autodiff(x, gamma, beta, residual, epilogue, running(), bn.epsilon);
            if let Some((mean, var)) = batch {
                let host = |v: Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), &device);
                bn.update_running(host(mean), host(var), n * h * w);
            }
            return Ok(same(y));
        }
        Err(x) => x,
    };
    match cast::<_, Tensor<Flex, 4>>(x) {
        // Flex alone has no autodiff: running statistics, nothing to update.
        Ok(x) => {
            let (epilogue, residual) = split(then);
            let prim = |t: Tensor<Flex, 4>| t.into_primitive().tensor();
            let prim1 = |t: Tensor<Flex, 1>| t.into_primitive().tensor();
            let residual = residual.map(|r| prim(same(r)));
            let (gamma, beta) = (prim1(same(bn.gamma.val())), prim1(same(bn.beta.val())));
            let out = compute(
                &prim(x),
                &gamma,
                &beta,
                residual.as_ref(),
                epilogue,
                Some(bn.running_statistics()),
                bn.epsilon,
            );
            Ok(same(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(out.y))))
        }
        Err(x) => Err((x, then)),
    }
}

fn split<B: Backend>(then: Then<B>) -> (Epilogue, Option<Tensor<B, 4>>) {
    match then {
        Then::Nothing => (Epilogue::None, None),
        Then::Relu => (Epilogue::Relu, None),
        Then::AddRelu(residual) => (Epilogue::AddRelu, Some(residual)),
    }
}

/// The forward pass: output, what the backward step keeps, and the batch statistics
/// (mean, biased variance) when they were computed.
struct Computed {
    y: FlexFloat,
    state: BnState,
    batch: Option<(Vec<f32>, Vec<f32>)>,
}

fn values(t: &FlexFloat) -> Vec<f32> {
    slice(&contiguous::<1>(t).0).to_vec()
}

/// `running`: the running mean and variance, or `None` for batch statistics.
fn compute(
    x: &FlexFloat,
    gamma: &FlexFloat,
    beta: &FlexFloat,
    residual: Option<&FlexFloat>,
    epilogue: Epilogue,
    running: Option<(Vec<f32>, Vec<f32>)>,
    epsilon: f64,
) -> Computed {
    let (x, [n, c, h, w]) = contiguous::<4>(x);
    let shape = BnShape { n, c, hw: h * w };
    let (gamma, beta) = (values(gamma), values(beta));
    let (mean, var, batch) = match running {
        Some((mean, var)) => (mean, var, None),
        None => {
            let (mean, var) = kernels::batch_stats(&shape, slice(&x));
            (mean.clone(), var.clone(), Some((mean, var)))
        }
    };
    let inv_std = kernels::inverse_std(&var, epsilon);
    let (a, b) = kernels::affine_map(&gamma, &beta, &mean, &var, epsilon);
    let residual = residual.map(|r| contiguous::<4>(r).0);
    let y = from_vec(kernels::affine(&shape, slice(&x), &a, &b, epilogue, residual.as_ref().map(slice)), [n, c, h, w]);
    let norm = Normalized { mean, inv_std, gamma, batch_statistics: batch.is_some() };
    let kept_y = (epilogue != Epilogue::None).then(|| y.clone());
    Computed { state: BnState { x, y: kept_y, shape, norm }, y, batch }
}

/// Prepares the backward step over `$nodes` (3 or 4 parents) and finishes the op.
macro_rules! track {
    ($nodes:expr, $computed:expr) => {
        match BnBackward.prepare::<NoCheckpointing>($nodes).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish($computed.state, $computed.y),
            OpsKind::UnTracked(prep) => prep.finish($computed.y),
        }
    };
}

#[allow(clippy::type_complexity)]
fn autodiff(
    x: Tensor<Cpu, 4>,
    gamma: Tensor<Cpu, 1>,
    beta: Tensor<Cpu, 1>,
    residual: Option<Tensor<Cpu, 4>>,
    epilogue: Epilogue,
    running: Option<(Vec<f32>, Vec<f32>)>,
    epsilon: f64,
) -> (Tensor<Cpu, 4>, Option<(Vec<f32>, Vec<f32>)>) {
    let (x, gamma, beta) =
        (x.into_primitive().tensor(), gamma.into_primitive().tensor(), beta.into_primitive().tensor());
    let residual = residual.map(|r| r.into_primitive().tensor());
    let computed = compute(
        &x.primitive,
        &gamma.primitive,
        &beta.primitive,
        residual.as_ref().map(|r| &r.primitive),
        epilogue,
        running,
        epsilon,
    );
    let batch = computed.batch.clone();
    let out = match residual {
        Some(r) => track!([x.node, gamma.node, beta.node, r.node], computed),
        None => track!([x.node, gamma.node, beta.node], computed),
    };
    (Tensor::from_primitive(TensorPrimitive::Float(out)), batch)
}

/// What the backward step keeps of the forward pass: the input, the output when a ReLU
/// follows (its sign is the ReLU's gradient), and the statistics.
#[derive(Debug, Clone)]
struct BnState {
    x: FlexFloat,
    y: Option<FlexFloat>,
    shape: BnShape,
    norm: Normalized,
}

/// Parents: input, gamma, beta, and the residual when there is one.
#[derive(Debug)]
struct BnBackward;

impl<const N: usize> Backward<Flex, N> for BnBackward {
    type State = BnState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let BnState { x, y, shape, norm } = ops.state;
        let (g, dims) = contiguous::<4>(&grads.consume::<Flex>(&ops.node));
        let parent = |i: usize| ops.parents.get(i).cloned().flatten();
        let (node_x, node_gamma, node_beta, node_residual) = (parent(0), parent(1), parent(2), parent(3));
        // The gradient at the normalisation's output (through the ReLU), which is also
        // the residual's.
        let gz = y.map(|y| kernels::relu_grad(slice(&g), slice(&y)));
        let gz_slice = gz.as_deref().unwrap_or_else(|| slice(&g));
        let need_sums = node_gamma.is_some() || node_beta.is_some() || (node_x.is_some() && norm.batch_statistics);
        let (sum, dot) = if need_sums {
            kernels::grad_sums(&shape, gz_slice, slice(&x), &norm.mean)
        } else {
            (vec![0.0; shape.c], vec![0.0; shape.c])
        };
        if let Some(node) = node_x {
            let dx = kernels::input_grad(&shape, gz_slice, slice(&x), &norm, (&sum, &dot));
            grads.register::<Flex>(node.id, from_vec(dx, dims));
        }
        if let Some(node) = node_gamma {
            let dgamma = dot.iter().zip(&norm.inv_std).map(|(d, i)| d * i).collect();
            grads.register::<Flex>(node.id, from_vec(dgamma, [shape.c]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, from_vec(sum, [shape.c]));
        }
        if let Some(node) = node_residual {
            let gz = gz.unwrap_or_else(|| slice(&g).to_vec());
            grads.register::<Flex>(node.id, from_vec(gz, dims));
        }
    }
}
