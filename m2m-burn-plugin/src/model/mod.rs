//! Models: ResNet-32 (CIFAR style), a small CNN, the cosine head, a BatchNorm with an
//! explicit evaluation mode, and the [`Classifier`] trait that M2m and the trainer use.

mod batch_norm;
mod checkpoint;
mod conv_bn;
mod normed_linear;
mod resnet;
mod small_cnn;

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

pub use batch_norm::{BatchNorm2d, Then};
pub use checkpoint::{load_classifier, net_from_bytes, net_to_bytes, save_classifier, CheckpointError};
pub(crate) use checkpoint::{meta_path, model_file, read_meta, resolve_model_source, ModelSource};
pub use conv_bn::{conv_bn, unfolded};
pub use m2m_core::classifier::{Classifier, Mode};
pub use normed_linear::NormedLinear;
pub use resnet::{BasicBlock, Head, ResNet32};
pub use small_cnn::SmallCnn;

/// The network to build, as named in recipes (`model.architecture`) and model metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    /// [`ResNet32`]: the M2m reference's CIFAR ResNet-32; the only one PyTorch
    /// checkpoints can be imported into.
    ResNet32,
    /// [`SmallCnn`]: three convolutions, for quick CPU runs.
    SmallCnn,
}

/// What to build: architecture, head, input shape and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The network's layers.
    pub architecture: Architecture,
    /// The cosine ("normed linear") head of LDAM instead of a linear one.
    pub cosine_head: bool,
    /// Channels of the input images (1 for grey-scale, 3 for colour).
    pub in_channels: usize,
    /// Classes to predict: the width of the logits.
    pub num_classes: usize,
    /// Per-channel mean subtracted from the input, in [0, 1] pixel units (one value per
    /// input channel).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation the input is divided by after the mean is
    /// subtracted, in [0, 1] pixel units (one positive value per input channel).
    pub std: Vec<f32>,
}

/// The layers of a [`Net`] after input normalisation, one variant per [`Architecture`].
#[derive(Module, Debug)]
pub enum Backbone<B: Backend> {
    /// A ResNet-32.
    ResNet32(ResNet32<B>),
    /// A small CNN.
    SmallCnn(SmallCnn<B>),
}

/// Our classifier: per-channel input normalisation inside the model (as M2m's
/// `InputNormalize`), so training and translation both work in [0, 1] pixel space.
#[derive(Module, Debug)]
pub struct Net<B: Backend> {
    pub(crate) backbone: Backbone<B>,
    #[module(skip)]
    mean: Vec<f32>,
    #[module(skip)]
    std: Vec<f32>,
    num_classes: usize,
}

/// Whether a network's parameters are drawn from burn's random generator or set to
/// constants (zero weights, BatchNorm's gamma one), for a network whose weights are about
/// to be replaced by a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weights {
    /// The architecture's initialisation, drawn from burn's generator: only ever inside
    /// [`m2m_core::seed::with_seed`].
    Drawn,
    /// Zeros: draws nothing.
    Zeroed,
}

impl Weights {
    /// `drawn` when drawing, burn's zero initializer otherwise.
    pub(crate) fn or(self, drawn: burn::nn::Initializer) -> burn::nn::Initializer {
        match self {
            Weights::Drawn => drawn,
            Weights::Zeroed => burn::nn::Initializer::Zeros,
        }
    }
}

impl ModelSpec {
    fn build<B: Backend>(&self, weights: Weights, device: &B::Device) -> Net<B> {
        let (c, k, cosine) = (self.in_channels, self.num_classes, self.cosine_head);
        let backbone = match self.architecture {
            Architecture::ResNet32 => Backbone::ResNet32(ResNet32::new(c, k, cosine, weights, device)),
            Architecture::SmallCnn => Backbone::SmallCnn(SmallCnn::new(c, k, cosine, weights, device)),
        };
        let net = Net { backbone, mean: self.mean.clone(), std: self.std.clone(), num_classes: self.num_classes };
        materialize(&net);
        net
    }

    /// A new network with the architecture's initialisation drawn from `seed`: the same
    /// weights for the same seed, whatever other threads draw meanwhile (burn's generator
    /// is seeded and read under [`m2m_core::seed::with_seed`]'s lock), and on every
    /// backend: they are drawn by the CPU backend (CubeCL's generators draw other numbers
    /// than Flex's) and moved to `device` exactly.
    pub fn init_seeded<B: Backend>(&self, seed: u64, device: &B::Device) -> Net<B> {
        let cpu = Default::default();
        let drawn: Net<burn::backend::Flex> =
            m2m_core::seed::with_seed::<burn::backend::Flex, _>(&cpu, seed, || self.build(Weights::Drawn, &cpu));
        net_from_bytes(self, &net_to_bytes(&drawn), device).expect("weights of the same network load")
    }

    /// A network of this shape with zero weights (BatchNorm: gamma one, running variance
    /// one), to load weights into. It draws nothing from burn's random generator, so
    /// loading a model never disturbs another thread's seeded initialisation.
    pub fn init_zeroed<B: Backend>(&self, device: &B::Device) -> Net<B> {
        self.build(Weights::Zeroed, device)
    }
}

struct Materialize;

impl<B: Backend> burn::module::ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Draws every lazily initialised parameter now. burn 0.21 initialises parameters on
/// first access, and a clone taken before that draws its own values: a model saved or
/// copied (M2m's g, a checkpoint) before its first forward would differ from the model.
pub fn materialize<B: Backend, M: Module<B>>(model: &M) {
    model.visit(&mut Materialize);
}

impl<B: Backend> Net<B> {
    /// The number of classes (the logits' width).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// `(x - mean) / std` per channel. M2m's wrapper clamps to [0, 1] first; our inputs are
    /// always in [0, 1] (augmentation and translation both clamp), where that clamp is the
    /// identity with gradient 1, so it is left out.
    fn normalize(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let device = x.device();
        let c = self.mean.len();
        let n = x.dims()[0];
        // One affine map: (x - mean) / std = x * (1/std) + (-mean/std).
        let scale: Vec<f32> = self.std.iter().map(|s| 1.0 / s).collect();
        let shift: Vec<f32> = self.mean.iter().zip(&self.std).map(|(m, s)| -m / s).collect();
        let scale = Tensor::<B, 1>::from_floats(scale.as_slice(), &device).reshape([1, c, 1, 1]);
        let shift = Tensor::<B, 1>::from_floats(shift.as_slice(), &device).reshape([1, c, 1, 1]);
        x.mul(batch_norm::per_sample(scale, n)).add(batch_norm::per_sample(shift, n))
    }
}

impl<B: Backend> Classifier<B> for Net<B> {
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        let x = self.normalize(images);
        match &self.backbone {
            Backbone::ResNet32(m) => m.forward(x, mode),
            Backbone::SmallCnn(m) => m.forward(x, mode),
        }
    }
}
