//! A BatchNorm that can run in evaluation mode on an autodiff backend.
//!
//! burn 0.21's `BatchNorm` picks batch statistics, and updates its running statistics,
//! whenever the backend is an autodiff backend. M2m's translation needs input gradients
//! through f and g *with running statistics and no update* (spec §1.4 C, §1.5), so the
//! mode here is an explicit argument. Running variance is updated with the unbiased batch
//! variance, as PyTorch does.

use burn::module::{Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::Mode;

#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    pub gamma: Param<Tensor<B, 1>>,
    pub beta: Param<Tensor<B, 1>>,
    pub running_mean: RunningState<Tensor<B, 1>>,
    pub running_var: RunningState<Tensor<B, 1>>,
    pub momentum: f64,
    pub epsilon: f64,
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
        let device = x.device();
        let [n, c, h, w] = x.dims();
        if mode == Mode::Train && B::ad_enabled(&device) {
            let count = n * h * w;
            // Reductions over N, H, W of the contiguous NCHW tensor (a swap_dims + reshape
            // would cost a strided copy per layer).
            let mean = x.clone().mean_dim(3).mean_dim(2).mean_dim(0); // [1, c, 1, 1]
            let centered = x.sub(per_sample(mean.clone(), n));
            let var = centered.clone().square().mean_dim(3).mean_dim(2).mean_dim(0); // biased
            let unbiased = if count > 1 { count as f64 / (count - 1) as f64 } else { 1.0 };
            let m = self.momentum;
            let rm = self.running_mean.value_sync().to_device(&device);
            let rv = self.running_var.value_sync().to_device(&device);
            self.running_mean
                .update(rm.mul_scalar(1.0 - m).add(mean.detach().reshape([c]).mul_scalar(m)).detach());
            self.running_var.update(
                rv.mul_scalar(1.0 - m)
                    .add(var.clone().detach().reshape([c]).mul_scalar(m * unbiased))
                    .detach(),
            );
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
        }
    }

    /// `gamma / sqrt(var + eps)` as `[1, c, 1, 1]`, for a `[1, c, 1, 1]` variance.
    fn scale(&self, var: Tensor<B, 4>) -> Tensor<B, 4> {
        let c = var.dims()[1];
        self.gamma.val().reshape([1, c, 1, 1]).div(var.add_scalar(self.epsilon).sqrt())
    }
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
