//! Start-up checks: a model M2m translates through must give deterministic logits that
//! do not depend on the rest of the batch when read in evaluation mode on the autodiff
//! backend. burn 0.21's `BatchNorm` and `Dropout` fail this (they ignore evaluation mode
//! under autodiff); translating through them would optimise against batch statistics or
//! noise, and update f's running statistics from translated images.

use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use m2m_core::classifier::{eval_scope, Classifier, Mode};

/// Why a model cannot be translated through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalModeError {
    /// Two reads of the same images gave different logits (a layer still draws at random).
    #[error(
        "{model} gives different logits for the same images on two calls in evaluation mode (max difference {diff:.3e}): \
         a layer stays random under autodiff (burn::nn::Dropout does); use m2m_burn_plugin::nn::Dropout, a drop-in with the same config and record"
    )]
    RandomOutputs {
        /// The model's name as given to [`check_eval_mode`] (the hook says `"f"` or `"g"`).
        model: &'static str,
        /// The largest absolute difference between the two reads' logits.
        diff: f32,
    },
    /// An image's logits changed when it was read alone instead of with the rest of its
    /// batch (a layer normalises with batch statistics).
    #[error(
        "{model}'s logits for an image depend on the other images of the batch in evaluation mode (max difference {diff:.3e}): \
         it normalises with batch statistics under autodiff (burn::nn::BatchNorm does); use m2m_burn_plugin::nn::BatchNorm, \
         a drop-in with the same config and record (existing checkpoints load), or honour `Mode::Eval` in `Classifier::logits`"
    )]
    BatchStatistics {
        /// The model's name as given to [`check_eval_mode`] (the hook says `"f"` or `"g"`).
        model: &'static str,
        /// The largest absolute difference between the first image's logits in the batch
        /// and alone.
        diff: f32,
    },
}

/// Images outside [0, 1]: M2m's step size, its random start and its clamp are in pixel
/// space, as in the reference, so a batcher that normalises (burn's guide subtracts
/// MNIST's mean and divides by its std) would be clamped into nonsense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the training batches' images hold values from {min:.4} to {max:.4}, but M2m translates pixels in [0, 1] \
     (its step size and clamp are in pixel space): if your Batcher normalises, say how with \
     M2mSettings::normalized(mean, std) (as docs/m2m.md shows for burn's guide); otherwise scale pixels to [0, 1] (e.g. / 255)"
)]
pub struct PixelRangeError {
    /// The smallest value in the checked images.
    pub min: f32,
    /// The largest value in the checked images.
    pub max: f32,
}

/// How far outside [0, 1] a pixel may be and still count as rounding.
const PIXEL_TOLERANCE: f32 = 1e-3;

/// Checks that `images` (a first batch, as the user's batcher built it) are pixels in
/// [0, 1], up to rounding.
pub fn check_pixel_range<B: burn::tensor::backend::Backend>(images: &Tensor<B, 4>) -> Result<(), PixelRangeError> {
    let min: f32 = images.clone().min().into_scalar().elem();
    let max: f32 = images.clone().max().into_scalar().elem();
    if min.is_finite() && max.is_finite() && min >= -PIXEL_TOLERANCE && max <= 1.0 + PIXEL_TOLERANCE {
        Ok(())
    } else {
        Err(PixelRangeError { min, max })
    }
}

fn max_abs_diff<B: AutodiffBackend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> (f32, f32) {
    let scale: f32 = a.clone().inner().abs().max().into_scalar().elem();
    let diff: f32 = a.inner().sub(b.inner()).abs().max().into_scalar().elem();
    (diff, scale)
}

/// Reads a copy of `model` (its own running statistics: the model itself is not touched)
/// on `images` (at least one image) in evaluation mode, inside M2m's evaluation scope.
pub fn check_eval_mode<B, M>(model: &M, images: Tensor<B, 4>, name: &'static str) -> Result<(), EvalModeError>
where
    B: AutodiffBackend,
    M: Classifier<B> + AutodiffModule<B>,
{
    let copy = M::from_inner(model.valid()).no_grad();
    let images = images.detach();
    let n = images.dims()[0];
    eval_scope(|| {
        let first = copy.logits(images.clone(), Mode::Eval);
        let second = copy.logits(images.clone(), Mode::Eval);
        let (diff, scale) = max_abs_diff(first.clone(), second);
        if diff > 1e-5 * (1.0 + scale) {
            return Err(EvalModeError::RandomOutputs { model: name, diff });
        }
        if n >= 2 {
            let alone = copy.logits(images.clone().narrow(0, 0, 1), Mode::Eval);
            let (diff, scale) = max_abs_diff(first.narrow(0, 0, 1), alone);
            if diff > 1e-4 * (1.0 + scale) {
                return Err(EvalModeError::BatchStatistics { model: name, diff });
            }
        }
        Ok(())
    })
}

/// The width of `model`'s logits on `images` (its number of classes), read from a copy in
/// evaluation mode.
pub(super) fn class_count<B, M>(model: &M, images: Tensor<B, 4>) -> usize
where
    B: AutodiffBackend,
    M: Classifier<B> + AutodiffModule<B>,
{
    let copy = M::from_inner(model.valid()).no_grad();
    eval_scope(|| copy.logits(images.detach().narrow(0, 0, 1), Mode::Eval)).dims()[1]
}
