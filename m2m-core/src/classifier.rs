//! The one thing M2m needs from a model: logits for images in [0, 1], in a chosen mode.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Whether normalisation layers use batch statistics (and update running ones) or
/// running statistics only. `Eval` must be honoured on autodiff backends too: M2m
/// optimises inputs through f and g with gradients and must not touch their statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// An image classifier that M2m can translate through and the trainer can train.
///
/// Implement it for your own burn model to use M2m with it. burn 0.21's `BatchNorm`
/// ignores any mode on autodiff backends, so use a BatchNorm that honours [`Mode`]
/// (such as `m2m_burn_plugin::model::BatchNorm2d`).
pub trait Classifier<B: Backend>: Module<B> {
    /// Logits `[batch, classes]` for images `[batch, channels, height, width]` in [0, 1].
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2>;
    fn num_classes(&self) -> usize;
}
