//! What the hook needs from a user's batch, and the training input it hands their model.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A batch whose images M2m can translate. Implement it for the batch type your
/// `Batcher` makes: four lines for most projects.
///
/// M2m's step size, random start and clamp are defined on pixels in [0, 1] (algorithm.md §4),
/// so `images` gives them in that range, `[n, channels, height, width]`; normalise inside
/// the model (as the reference does), not in the batcher.
pub trait M2mBatch<B: Backend>: Sized {
    /// The images, `[n, c, h, w]`, pixels in [0, 1]: what the model's
    /// `Classifier::logits` takes.
    fn images(&self) -> Tensor<B, 4>;
    /// The same batch with `images` (the shape and range [`M2mBatch::images`] gave) in
    /// place of its own; labels and everything else unchanged.
    fn with_images(self, images: Tensor<B, 4>) -> Self;
}

/// A training batch from the hook's data loader: your batch, and its labels on the host
/// (the loader knows them, so M2m never reads them back from the device).
#[derive(Debug, Clone)]
pub struct M2mInput<O> {
    /// The batch your `Batcher` made from the sampled items.
    pub batch: O,
    /// The class of each item in the batch, in order (as the hook's `label` closure read it).
    pub labels: Vec<usize>,
    /// The 0-based epoch the batch belongs to.
    pub epoch: usize,
    /// The batch's 0-based index within its epoch.
    pub iteration: usize,
}

/// A batch's image tensor in a layout M2m reads: `[n, c, h, w]`, or `[n, h, w]` for images
/// with one channel. [`m2m_batch!`](crate::m2m_batch) uses it.
pub trait ImageTensor<B: Backend>: Sized {
    /// The images as `[n, c, h, w]`.
    fn to_nchw(self) -> Tensor<B, 4>;
    /// Images `[n, c, h, w]` back in this layout (`c` is 1 for `[n, h, w]`).
    fn from_nchw(images: Tensor<B, 4>) -> Self;
}

impl<B: Backend> ImageTensor<B> for Tensor<B, 4> {
    fn to_nchw(self) -> Tensor<B, 4> {
        self
    }
    fn from_nchw(images: Tensor<B, 4>) -> Self {
        images
    }
}

impl<B: Backend> ImageTensor<B> for Tensor<B, 3> {
    fn to_nchw(self) -> Tensor<B, 4> {
        self.unsqueeze_dim(1)
    }
    fn from_nchw(images: Tensor<B, 4>) -> Self {
        images.squeeze_dim(1)
    }
}

/// Implements [`M2mBatch`] for a batch struct `Name<B>` whose field `field` holds its
/// images as `Tensor<B, 4>` (`[n, c, h, w]`) or `Tensor<B, 3>` (`[n, h, w]`, one channel):
///
/// ```ignore
/// m2m_burn_plugin::m2m_batch!(MnistBatch, images);
/// ```
#[macro_export]
macro_rules! m2m_batch {
    ($batch:ident, $field:ident) => {
        impl<B: $crate::hook::__private::Backend> $crate::hook::M2mBatch<B> for $batch<B> {
            fn images(&self) -> $crate::hook::__private::Tensor<B, 4> {
                $crate::hook::ImageTensor::to_nchw(self.$field.clone())
            }
            fn with_images(self, images: $crate::hook::__private::Tensor<B, 4>) -> Self {
                $batch { $field: $crate::hook::ImageTensor::from_nchw(images), ..self }
            }
        }
    };
}

/// Implements [`Classifier`](m2m_core::classifier::Classifier) for a model `Name<B>` with
/// the expression that gives its logits for `images` (`[n, c, h, w]`, what the batches'
/// [`M2mBatch::images`] gives), the model being `model`:
///
/// ```ignore
/// m2m_burn_plugin::classifier!(Model, |model, images| model.forward(images.squeeze_dim(1)));
/// ```
///
/// The model is read in evaluation mode inside M2m's evaluation scope, which
/// [`crate::nn`]'s `BatchNorm` and `Dropout` follow; implement the trait by hand to pass
/// the mode to layers of your own.
#[macro_export]
macro_rules! classifier {
    ($model:ident, |$this:ident, $images:ident| $logits:expr) => {
        impl<B: $crate::hook::__private::Backend> $crate::hook::Classifier<B> for $model<B> {
            fn logits(
                &self,
                $images: $crate::hook::__private::Tensor<B, 4>,
                _mode: $crate::hook::Mode,
            ) -> $crate::hook::__private::Tensor<B, 2> {
                let $this = self;
                $logits
            }
        }
    };
}
