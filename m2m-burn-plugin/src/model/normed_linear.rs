//! The cosine classifier ("NormedLinear") of LDAM-DRW and M2m's `resnet32_norm`.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};

use super::Weights;

/// The cosine head's layer (LDAM-DRW's `NormedLinear`): logits are cosines between the
/// L2-normalised features and the L2-normalised columns of `weight`.
#[derive(Module, Debug)]
pub struct NormedLinear<B: Backend> {
    /// Shape `[in_features, classes]`; columns are class directions.
    pub weight: Param<Tensor<B, 2>>,
}

fn l2_normalize<B: Backend>(x: Tensor<B, 2>, dim: usize) -> Tensor<B, 2> {
    // F.normalize: x / max(||x||, 1e-12)
    let norm = x.clone().square().sum_dim(dim).sqrt().clamp_min(1e-12);
    x.div(norm)
}

impl<B: Backend> NormedLinear<B> {
    /// U(-1, 1) then every column renormalised to unit length (algorithm.md §6.1); zeros for
    /// [`Weights::Zeroed`].
    pub(crate) fn new(in_features: usize, classes: usize, weights: Weights, device: &B::Device) -> Self {
        let w = match weights {
            Weights::Drawn => Tensor::random([in_features, classes], Distribution::Uniform(-1.0, 1.0), device),
            Weights::Zeroed => Tensor::zeros([in_features, classes], device),
        };
        Self { weight: Param::from_tensor(l2_normalize(w, 0)) }
    }

    /// Cosine logits in [-1, 1]: `normalize(h, dim=1) @ normalize(W, dim=0)`.
    pub fn forward(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        l2_normalize(h, 1).matmul(l2_normalize(self.weight.val(), 0))
    }
}
