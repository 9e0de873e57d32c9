//! What the hook needs from a user's batch, and the training input it hands their model.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A batch whose images M2m can translate. Implement it for the batch type your
/// `Batcher` makes: four lines for most projects.
///
/// M2m's step size, random start and clamp are defined on pixels in [0, 1] (spec §1.4),
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
    pub batch: O,
    pub labels: Vec<usize>,
    /// The 0-based epoch the batch belongs to.
    pub epoch: usize,
}
