//! The one thing M2m needs from a model: logits for images in [0, 1], in a chosen mode;
//! and the evaluation scope that layers without a mode argument can consult.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Whether normalisation layers use batch statistics (and update running ones) or
/// running statistics only. `Eval` must be honoured on autodiff backends too: M2m
/// optimises inputs through f and g with gradients and must not touch their statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: batch statistics, running statistics updated (on autodiff backends).
    Train,
    /// Evaluation: running statistics only, left unchanged; what M2m translates in.
    Eval,
}

/// An image classifier that M2m can translate through and the trainer can train.
///
/// Implement it for your own burn model to use M2m with it. burn 0.21's `BatchNorm`
/// ignores any mode on autodiff backends, so use a BatchNorm that honours [`Mode`]
/// (such as `m2m_burn_plugin::model::BatchNorm2d`) or reads the evaluation scope
/// (`m2m_burn_plugin::nn::BatchNorm`). The number of classes is the logits' width.
pub trait Classifier<B: Backend> {
    /// Logits `[batch, classes]` for images `[batch, channels, height, width]`: pixels in
    /// [0, 1], or as an [`InputNormalization`] maps them, when M2m is told so.
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2>;
}

/// How a data pipeline normalises pixels before the model sees them: `(pixel - mean) /
/// std` per channel. M2m's step size, random start and clamp are defined on pixels in
/// [0, 1], so it translates in pixel space and hands the model normalised images.
#[derive(Debug, Clone, PartialEq)]
pub struct InputNormalization {
    mean: Vec<f32>,
    std: Vec<f32>,
}

/// Why an [`InputNormalization`] was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("input normalisation: {0}")]
pub struct NormalizationError(String);

impl InputNormalization {
    /// One mean and one standard deviation per channel (or one of each for all channels).
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self, NormalizationError> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(NormalizationError(format!(
                "{} means and {} standard deviations: give one of each per channel",
                mean.len(),
                std.len()
            )));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(NormalizationError(format!("standard deviation {s} is not a positive number")));
        }
        if let Some(m) = mean.iter().find(|m| !m.is_finite()) {
            return Err(NormalizationError(format!("mean {m} is not a number")));
        }
        Ok(Self { mean, std })
    }

    /// Whether it fits images with `channels` channels (one value for all, or one per channel).
    pub fn check_channels(&self, channels: usize) -> Result<(), NormalizationError> {
        if self.mean.len() == 1 || self.mean.len() == channels {
            return Ok(());
        }
        Err(NormalizationError(format!(
            "{} means and standard deviations for images with {channels} channels",
            self.mean.len()
        )))
    }

    fn per_channel<B2: Backend>(values: &[f32], images: &Tensor<B2, 4>) -> Tensor<B2, 4> {
        let c = images.dims()[1];
        let values: Vec<f32> = if values.len() == 1 { vec![values[0]; c] } else { values.to_vec() };
        assert_eq!(values.len(), c, "input normalisation for {} channels applied to {c}", values.len());
        Tensor::<B2, 1>::from_floats(values.as_slice(), &images.device()).reshape([1, c, 1, 1])
    }

    /// `(pixels - mean) / std`: what the model is given.
    pub fn normalize<B2: Backend>(&self, pixels: Tensor<B2, 4>) -> Tensor<B2, 4> {
        let (mean, std) = (Self::per_channel(&self.mean, &pixels), Self::per_channel(&self.std, &pixels));
        pixels.sub(mean).div(std)
    }

    /// `images * std + mean`: pixels from normalised images.
    pub fn pixels<B2: Backend>(&self, images: Tensor<B2, 4>) -> Tensor<B2, 4> {
        let (mean, std) = (Self::per_channel(&self.mean, &images), Self::per_channel(&self.std, &images));
        images.mul(std).add(mean)
    }
}

/// A classifier read on pixels in [0, 1] although it takes normalised images.
pub struct OnPixels<'a, C> {
    /// The wrapped classifier, which expects normalised images.
    pub classifier: &'a C,
    /// The normalisation applied to the pixels before they reach `classifier`.
    pub normalization: &'a InputNormalization,
}

impl<B: Backend, C: Classifier<B>> Classifier<B> for OnPixels<'_, C> {
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        self.classifier.logits(self.normalization.normalize(images), mode)
    }
}

thread_local! {
    static EVAL_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with every scope-aware layer of this thread in evaluation mode: running
/// statistics, no statistics update, no dropout. M2m translates inside this scope, so
/// models that keep burn's one-argument `forward` (no [`Mode`]) can still be read in
/// evaluation mode on autodiff backends, provided they use layers that ask
/// [`in_eval_scope`] (`m2m_burn_plugin::nn::{BatchNorm, Dropout}`, drop-ins for burn's).
pub fn eval_scope<R>(f: impl FnOnce() -> R) -> R {
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            EVAL_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
    EVAL_DEPTH.with(|d| d.set(d.get() + 1));
    let _exit = Exit; // also leaves the scope when `f` panics
    f()
}

/// Whether this thread is inside [`eval_scope`].
pub fn in_eval_scope() -> bool {
    EVAL_DEPTH.with(|d| d.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_nests_and_is_left_on_panic() {
        assert!(!in_eval_scope());
        eval_scope(|| {
            assert!(in_eval_scope());
            eval_scope(|| assert!(in_eval_scope()));
            assert!(in_eval_scope());
        });
        assert!(!in_eval_scope());
        assert!(std::panic::catch_unwind(|| eval_scope(|| panic!("inside"))).is_err());
        assert!(!in_eval_scope());
        // Per thread: another thread is not in this one's scope.
        eval_scope(|| assert!(!std::thread::spawn(in_eval_scope).join().unwrap()));
    }
}
