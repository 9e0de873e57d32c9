//! burn's `Dropout`, inactive inside M2m's evaluation scope.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use m2m_core::classifier::in_eval_scope;

/// The same field as `burn::nn::DropoutConfig`.
#[derive(Config, Debug)]
pub struct DropoutConfig {
    /// The probability of zeroing an element, in [0, 1].
    pub prob: f64,
}

/// `burn::nn::Dropout` with the same record; it drops on autodiff backends outside M2m's
/// evaluation scope only.
///
/// Its masks are drawn from burn's generator under [`m2m_core::seed::scoped_draw`]: in a
/// training step of the burn-train hook (`M2mModel`'s `TrainStep`), from the seed of that
/// step, so f's training is the same in every run whatever other threads draw; elsewhere
/// from burn's generator as it is, as burn's `Dropout` draws (but never in the middle of
/// another thread's seeded draw).
#[derive(Module, Clone, Debug)]
pub struct Dropout {
    /// The probability of zeroing an element, in [0, 1].
    pub prob: f64,
}

impl DropoutConfig {
    /// A `Dropout` with this probability.
    ///
    /// # Panics
    /// When `prob` is outside [0, 1], as burn's does.
    pub fn init(&self) -> Dropout {
        assert!(
            (0.0..=1.0).contains(&self.prob),
            "Dropout probability should be between 0 and 1, but got {}",
            self.prob
        );
        Dropout { prob: self.prob }
    }
}

impl Dropout {
    /// Any shape in, the same shape out. On an autodiff backend outside M2m's evaluation
    /// scope, zeroes each element with probability `prob` and scales the others by
    /// `1 / (1 - prob)`; elsewhere (and with `prob` 0) returns `input` unchanged.
    pub fn forward<B: Backend, const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        if !B::ad_enabled(&input.device()) || self.prob == 0.0 || in_eval_scope() {
            return input;
        }
        let keep = 1.0 - self.prob;
        let mask =
            m2m_core::seed::scoped_draw::<B, _>(&input.device(), || input.random_like(Distribution::Bernoulli(keep)));
        input.mul(mask).mul_scalar(1.0 / keep)
    }
}
