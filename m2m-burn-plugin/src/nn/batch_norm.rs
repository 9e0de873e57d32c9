//! burn's `BatchNorm`, with evaluation inside M2m's evaluation scope: the drop-in for
//! users' burn models. m2m's own networks use `model::BatchNorm2d` instead, whose mode is
//! an argument of `forward` and which fuses the ReLU and residual that follow it.

use burn::config::Config;
use burn::module::{Initializer, Module, Param, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use m2m_core::classifier::in_eval_scope;

/// The same fields and defaults as `burn::nn::BatchNormConfig`.
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// The number of features (channels, dimension 1 of the input).
    pub num_features: usize,
    /// Added to the variance before its square root, for numerical stability (default 1e-5).
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the new batch statistics in each running-statistics update (default 0.1):
    /// `running = (1 - momentum) * running + momentum * batch`.
    #[config(default = 0.1)]
    pub momentum: f64,
}

/// `burn::nn::BatchNorm` with the same record (field names and types), so records saved
/// from either load into the other. Training arithmetic is burn's, to the operation:
/// swapping it in changes nothing outside M2m's translations.
#[derive(Module, Debug)]
pub struct BatchNorm<B: Backend> {
    /// The learned scale, one per channel (initially 1).
    pub gamma: Param<Tensor<B, 1>>,
    /// The learned shift, one per channel (initially 0).
    pub beta: Param<Tensor<B, 1>>,
    /// The running mean per channel, used in evaluation (initially 0).
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// The running (biased) variance per channel, used in evaluation (initially 1).
    pub running_var: RunningState<Tensor<B, 1>>,
    /// [`BatchNormConfig::momentum`].
    pub momentum: f64,
    /// [`BatchNormConfig::epsilon`].
    pub epsilon: f64,
}

impl BatchNormConfig {
    /// A `BatchNorm` on `device` with scale 1, shift 0, running mean 0 and running
    /// variance 1, as burn's.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BatchNorm<B> {
        BatchNorm {
            gamma: Initializer::Ones.init([self.num_features], device),
            beta: Initializer::Zeros.init([self.num_features], device),
            running_mean: RunningState::new(Tensor::zeros([self.num_features], device)),
            running_var: RunningState::new(Tensor::ones([self.num_features], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

impl<B: Backend> BatchNorm<B> {
    /// `[batch, channels, ...]` in, same shape out. Batch statistics (and a running
    /// statistics update) on an autodiff backend outside M2m's evaluation scope; running
    /// statistics, unchanged, everywhere else.
    ///
    /// # Panics
    /// On inputs of rank < 2, as burn's does.
    pub fn forward<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        assert!(D >= 2, "BatchNorm needs [batch, channels, ...] inputs, got a {D}D tensor");
        if B::ad_enabled(&input.device()) && !in_eval_scope() {
            self.forward_train(input)
        } else {
            self.forward_inference(input)
        }
    }

    fn channel_shape<const D: usize>(channels: usize) -> [usize; D] {
        let mut shape = [1; D];
        shape[1] = channels;
        shape
    }

    fn forward_inference<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let device = input.device();
        let shape = Self::channel_shape::<D>(input.dims()[1]);
        // `value_sync`: `value` can lag one update behind a training forward on this thread.
        let mean = self.running_mean.value_sync().to_device(&device).reshape(shape);
        let var = self.running_var.value_sync().to_device(&device).reshape(shape);
        self.forward_shared(input, mean, var)
    }

    fn forward_train<const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let device = input.device();
        let dims = input.dims();
        let channels = dims[1];
        let shape = Self::channel_shape::<D>(channels);
        let flat: usize = dims.iter().enumerate().filter(|(i, _)| *i != 1).map(|(_, d)| d).product();
        let per_channel = |t: Tensor<B, D>| t.swap_dims(0, 1).reshape([channels, flat]).mean_dim(1).reshape(shape);
        let mean = per_channel(input.clone());
        let var = per_channel(input.clone().sub(mean.clone()).square());
        let m = self.momentum;
        let running_mean = self.running_mean.value_sync().to_device(&device);
        let running_var = self.running_var.value_sync().to_device(&device);
        self.running_mean.update(
            running_mean.mul_scalar(1.0 - m).add(mean.clone().detach().mul_scalar(m).reshape([channels])).detach(),
        );
        self.running_var.update(
            running_var.mul_scalar(1.0 - m).add(var.clone().detach().mul_scalar(m).reshape([channels])).detach(),
        );
        self.forward_shared(input, mean, var)
    }

    fn forward_shared<const D: usize>(&self, x: Tensor<B, D>, mean: Tensor<B, D>, var: Tensor<B, D>) -> Tensor<B, D> {
        let shape = Self::channel_shape::<D>(x.dims()[1]);
        let std = var.add_scalar(self.epsilon).sqrt();
        x.sub(mean).div(std).mul(self.gamma.val().reshape(shape)).add(self.beta.val().reshape(shape))
    }
}
