//! A BatchNorm that can run in evaluation mode on an autodiff backend, with the ReLU (and
//! the residual add) that follows it fused in on the CPU backend.
//!
//! Two BatchNorms, one sentence each: this `BatchNorm2d` is the layer of m2m's own
//! networks (ResNet-32, the small CNN), whose `forward` takes the mode as an argument and
//! fuses what follows; [`crate::nn::BatchNorm`] is the drop-in for users' burn models, with
//! burn's config, record and `forward`, reading the mode from M2m's evaluation scope.
//!
//! burn 0.21's `BatchNorm` picks batch statistics, and updates its running statistics,
//! whenever the backend is an autodiff backend. M2m's translation needs input gradients
//! through f and g *with running statistics and no update* (algorithm.md §4.3, §6.2), so the
//! mode here is an explicit argument. Running variance is updated with the unbiased batch
//! variance, as PyTorch does.
//!
//! On the CPU backend the layer runs our kernels (`kernels.rs`, `fused.rs`): one pass for
//! the statistics, one for normalisation and epilogue, two backward. As burn tensor ops
//! it is a dozen Flex element-wise ops, most of them on one core (Flex goes parallel only
//! above about 4 M elements), each allocating its output (docs/benchmarks.md, issue
//! #14). Other backends run [`BatchNorm2d::forward_tensor_ops`], which is also what the
//! fused op is tested against.

mod fused;

use burn::module::{Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

use super::Mode;
use crate::kernels::cpu::{enabled, Kernel};

/// Batch normalisation over the channels of `[batch, channels, height, width]` images,
/// with the mode an argument of [`forward`](Self::forward) (see the module documentation).
#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// Per-channel scale applied after normalisation, `[channels]` (trained; starts at 1).
    pub gamma: Param<Tensor<B, 1>>,
    /// Per-channel shift added after scaling, `[channels]` (trained; starts at 0).
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean per channel, `[channels]`: used in evaluation, updated by training
    /// forwards.
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (unbiased) variance per channel, `[channels]`: used in evaluation, updated
    /// by training forwards.
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Weight of the new batch in each running-statistics update,
    /// `running = (1 - momentum) * running + momentum * batch` (PyTorch's convention;
    /// default 0.1).
    pub momentum: f64,
    /// Added to the variance before its square root, for numerical stability (default
    /// 1e-5).
    pub epsilon: f64,
}

/// What follows the normalisation (fused into it on the CPU backend).
#[derive(Debug, Clone)]
pub enum Then<B: Backend> {
    /// The normalised values as they are.
    Nothing,
    /// `relu(bn(x))`.
    Relu,
    /// `relu(bn(x) + residual)`: the end of a ResNet basic block.
    AddRelu(Tensor<B, 4>),
}

impl<B: Backend> BatchNorm2d<B> {
    /// PyTorch defaults: momentum 0.1, epsilon 1e-5, gamma 1, beta 0.
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            gamma: Initializer::Ones.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    /// `Mode::Train` on an autodiff backend normalises with batch statistics and updates
    /// the running ones; every other case uses the running statistics and changes nothing.
    pub fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> Tensor<B, 4> {
        self.forward_then(x, mode, Then::Nothing)
    }

    /// [`forward`](Self::forward) followed by `then`; one fused op on the CPU backend.
    pub fn forward_then(&self, x: Tensor<B, 4>, mode: Mode, then: Then<B>) -> Tensor<B, 4> {
        let batch_statistics = mode == Mode::Train && B::ad_enabled(&x.device());
        let residual_fits = match &then {
            Then::AddRelu(r) => r.dtype() == DType::F32 && r.dims() == x.dims(),
            Then::Nothing | Then::Relu => true,
        };
        if !enabled(Kernel::BatchNorm)
            || x.dtype() != DType::F32
            || self.gamma.val().dtype() != DType::F32
            || !residual_fits
        {
            return self.forward_tensor_ops(x, mode, then);
        }
        match fused::forward(self, x, batch_statistics, then) {
            Ok(y) => y,
            Err((x, then)) => self.forward_tensor_ops(x, mode, then),
        }
    }

    /// The same layer as burn tensor ops, which every backend runs: the formulation other
    /// backends use and the reference the fused CPU op is tested against.
    pub fn forward_tensor_ops(&self, x: Tensor<B, 4>, mode: Mode, then: Then<B>) -> Tensor<B, 4> {
        let device = x.device();
        let [n, c, h, w] = x.dims();
        let y = if mode == Mode::Train && B::ad_enabled(&device) {
            // Reductions over N, H, W of the contiguous NCHW tensor (a swap_dims + reshape
            // would cost a strided copy per layer).
            let mean = x.clone().mean_dim(3).mean_dim(2).mean_dim(0); // [1, c, 1, 1]
            let centered = x.sub(per_sample(mean.clone(), n));
            let var = centered.clone().square().mean_dim(3).mean_dim(2).mean_dim(0); // biased
            self.update_running(mean.detach().reshape([c]), var.clone().detach().reshape([c]), n * h * w);
            let scale = self.scale(var);
            centered.mul(per_sample(scale, n)).add(per_sample(self.beta.val().reshape([1, c, 1, 1]), n))
        } else {
            // `value_sync`: `value` can lag one update behind a train-mode forward on this thread.
            let mean = self.running_mean.value_sync().to_device(&device).reshape([1, c, 1, 1]);
            let var = self.running_var.value_sync().to_device(&device).reshape([1, c, 1, 1]);
            // Fold into one affine map: y = x * scale + shift.
            let scale = self.scale(var);
            let shift = self.beta.val().reshape([1, c, 1, 1]).sub(mean.mul(scale.clone()));
            x.mul(per_sample(scale, n)).add(per_sample(shift, n))
        };
        match then {
            Then::Nothing => y,
            Then::Relu => relu(y),
            Then::AddRelu(residual) => relu(y.add(residual)),
        }
    }

    /// Running statistics after a batch with this mean and biased variance (`[c]`, no
    /// gradient) over `count` values per channel.
    fn update_running(&self, mean: Tensor<B, 1>, var: Tensor<B, 1>, count: usize) {
        let device = mean.device();
        let unbiased = if count > 1 { count as f64 / (count - 1) as f64 } else { 1.0 };
        let m = self.momentum;
        let rm = self.running_mean.value_sync().to_device(&device);
        let rv = self.running_var.value_sync().to_device(&device);
        self.running_mean.update(rm.mul_scalar(1.0 - m).add(mean.mul_scalar(m)).detach());
        self.running_var.update(rv.mul_scalar(1.0 - m).add(var.mul_scalar(m * unbiased)).detach());
    }

    /// The running statistics on the host (for the fused op).
    fn running_statistics(&self) -> (Vec<f32>, Vec<f32>) {
        (host(self.running_mean.value_sync()), host(self.running_var.value_sync()))
    }

    /// The layer with running statistics as the per-channel affine map `a * x + b` (host
    /// values): what a frozen BatchNorm folds into the convolution before it
    /// (`model::conv_bn`).
    pub(crate) fn running_affine(&self) -> (Vec<f32>, Vec<f32>) {
        let (mean, var) = self.running_statistics();
        crate::kernels::batch_norm::affine_map(
            &host(self.gamma.val()),
            &host(self.beta.val()),
            &mean,
            &var,
            self.epsilon,
        )
    }

    /// Whether any parameter takes a gradient.
    pub(crate) fn is_require_grad(&self) -> bool {
        self.gamma.val().is_require_grad() || self.beta.val().is_require_grad()
    }

    /// `gamma / sqrt(var + eps)` as `[1, c, 1, 1]`, for a `[1, c, 1, 1]` variance.
    fn scale(&self, var: Tensor<B, 4>) -> Tensor<B, 4> {
        let c = var.dims()[1];
        self.gamma.val().reshape([1, c, 1, 1]).div(var.add_scalar(self.epsilon).sqrt())
    }
}

fn host<B: Backend>(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().expect("f32 after convert")
}

/// Repeats a per-channel `[1, c, 1, 1]` tensor to `[n, c, 1, 1]`. Flex broadcasts
/// `[n, c, h, w] op [n, c, 1, 1]` with a SIMD kernel but falls back to a scalar strided
/// loop for `[1, c, 1, 1]`, which made BatchNorm the largest cost of a training step.
pub(crate) fn per_sample<B: Backend>(t: Tensor<B, 4>, n: usize) -> Tensor<B, 4> {
    if n == 1 {
        t
    } else {
        t.repeat_dim(0, n)
    }
}
