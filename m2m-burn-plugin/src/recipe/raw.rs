//! The recipe exactly as written in a RON file: every field optional, unknown fields
//! rejected. Files are merged (`base:` first, then the file, then `--set` overrides)
//! at this level and only then checked into a [`super::Recipe`].

use std::path::PathBuf;

use m2m_core::imbalance::ImbalanceProfile;
use m2m_core::loss::{LossKind, WeightedMean};
use m2m_core::sampling::SamplerKind;
use m2m_core::schedule::Milestone;
use m2m_core::translation::{RandomStart, SeedSelection};
use m2m_core::weighting::ClassWeighting;
use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::data::images::{ClassList, Color, Fit, ImageCache, ImageLayout, ImageSize};
use crate::data::{Augmentation, DatasetName, EvalSplit, Normalization, Selection};
use crate::model::Architecture;

/// Field-wise "take mine, else theirs" for the raw recipe tree.
pub trait Merge {
    /// `self` laid over `base`: each field set in `self` wins, each field left out takes
    /// `base`'s value, and sections set in both are merged the same way, field by field.
    fn merge_over(self, base: Self) -> Self;
}

macro_rules! merge_struct {
    ($ty:ident { $($leaf:ident),* } nested { $($nested:ident),* }) => {
        impl Merge for $ty {
            fn merge_over(self, base: Self) -> Self {
                $ty {
                    $($leaf: self.$leaf.or(base.$leaf),)*
                    $($nested: match (self.$nested, base.$nested) {
                        (Some(a), Some(b)) => Some(a.merge_over(b)),
                        (a, b) => a.or(b),
                    },)*
                }
            }
        }
    };
}

/// A whole recipe file (or a merge of files and overrides) before checking; docs/recipes.md
/// describes each field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipe {
    /// Another recipe this one starts from, relative to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    /// The run name (required): non-empty, no path separator; names the run directory.
    pub name: Option<String>,
    /// The data set, its long-tailed subset, evaluation split and augmentation (required).
    pub dataset: Option<RawDataset>,
    /// f's network (required).
    pub model: Option<RawModel>,
    /// SGD's settings (required).
    pub optimizer: Option<RawOptimizer>,
    /// Epochs and the learning-rate schedule (required).
    pub schedule: Option<RawSchedule>,
    /// A deferred sampler (DRS, RS, SMOTE); natural shuffling throughout when left out.
    pub sampler: Option<RawSampler>,
    /// The training loss; cross-entropy with unit weights when left out.
    pub loss: Option<RawLoss>,
    /// M2m's settings; a run without M2m when left out.
    pub m2m: Option<RawM2m>,
    /// Start f from a checkpoint at a given epoch instead of from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<RawStartFrom>,
    /// The training batch size, >= 1 (required).
    pub batch_size: Option<usize>,
    /// The batch size of validation and test, >= 1 (default 256).
    pub eval_batch_size: Option<usize>,
    /// Post-hoc logit adjustment τ: validation and test predict `argmax z - τ log π`.
    pub eval_logit_adjustment: Option<f64>,
    /// The training seed: model initialisation, sampling and augmentation (required).
    pub seed: Option<u64>,
    /// The folder that holds the run directory (default `runs`).
    pub output_dir: Option<PathBuf>,
    /// `Cpu` (the default), `Cuda(device: N)` or `Wgpu(adapter: Default)`; `--backend` on the
    /// command line wins.
    pub backend: Option<BackendChoice>,
    /// TensorBoard event files in the run's `tensorboard/` folder (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorboard: Option<bool>,
}
merge_struct!(RawRecipe { base, name, batch_size, eval_batch_size, eval_logit_adjustment, seed, output_dir, backend, tensorboard }
    nested { dataset, model, optimizer, schedule, sampler, loss, m2m, start_from });

/// The `dataset` section: which images, the long-tailed subset cut from them, the
/// validation and test split, augmentation and normalisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    /// A built-in data set; leave it out for `images`.
    pub name: Option<DatasetName>,
    /// Users' image files (folders or split files) under `path`; instead of `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<RawImages>,
    /// The folder with the data files; left out, built-in sets are looked for in `$M2M_DATA`
    /// and the usual places. Required for `images`.
    pub path: Option<PathBuf>,
    /// The shape of the long tail, or `AsIs` (required).
    pub imbalance: Option<RawImbalance>,
    /// `N_max / N_min`, a finite number >= 1; required unless `imbalance` is `AsIs`, which
    /// refuses it.
    pub ratio: Option<f64>,
    /// `N_max`, >= 1 (default: the smallest class of the files); with `AsIs`, the most
    /// images any class keeps (default: all).
    pub max_per_class: Option<usize>,
    /// Which images of a class make its subset: `FirstInOrder` or `SeededShuffle` (required).
    pub selection: Option<Selection>,
    /// The seed of the subset, separate from the training seed (required).
    pub data_seed: Option<u64>,
    /// Where validation and test images come from (required).
    pub eval_split: Option<EvalSplit>,
    /// Only the first N test-file images of each class for validation and test, >= 1
    /// (quick runs; default: all).
    pub max_eval_per_class: Option<usize>,
    /// Random crop padding and horizontal flips of training images (required); the
    /// padding must be smaller than the image.
    pub augmentation: Option<Augmentation>,
    /// `Standard` (built-in sets' published values, their default), `FromTrain` (the
    /// default for image files) or `Given(mean: [..], std: [..])`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
}
merge_struct!(RawDataset { name, path, imbalance, ratio, max_per_class, selection, data_seed, eval_split, max_eval_per_class, augmentation, normalization }
    nested { images });

/// `dataset.imbalance`: the long tail cut from the training split, or the split as it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RawImbalance {
    /// Every class keeps `N_max` images.
    Balanced,
    /// `N_k = floor(N_max * (1/ratio)^(k/(C-1)))`.
    Exponential,
    /// `N_max` for classes below `minority_start`, `floor(N_max / ratio)` from it on.
    Step {
        /// The first class index that keeps the minority count (classes `k >= minority_start`).
        minority_start: usize,
    },
    /// The training split's own class counts (each at most `max_per_class`); no `ratio`.
    AsIs,
}

impl RawImbalance {
    /// The profile that cuts a long tail, `None` for `AsIs`.
    pub fn profile(self) -> Option<ImbalanceProfile> {
        match self {
            RawImbalance::Balanced => Some(ImbalanceProfile::Balanced),
            RawImbalance::Exponential => Some(ImbalanceProfile::Exponential),
            RawImbalance::Step { minority_start } => Some(ImbalanceProfile::Step { minority_start }),
            RawImbalance::AsIs => None,
        }
    }
}

/// An image-file data set (see `crate::data::images`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImages {
    /// The data set's name in run names and reports.
    pub name: Option<String>,
    /// `ClassFolders(..)` or `SplitFiles(..)`: where each split's images and labels are
    /// under `dataset.path` (required).
    pub layout: Option<ImageLayout>,
    /// `Sorted` (the default) or `Listed([...])`.
    pub classes: Option<ClassList>,
    /// `Grey` or `Rgb`: the channels the model sees; other images are converted (required).
    pub color: Option<Color>,
    /// The images' `(height, width)` in pixels, each in 1..=4096 (required).
    pub size: Option<ImageSize>,
    /// `Exact` (the default), `Resize`, `CenterCrop` or `ResizeCenterCrop`.
    pub fit: Option<Fit>,
    /// `Auto` (the default), `Off` or `Folder("...")`.
    pub cache: Option<ImageCache>,
}
merge_struct!(RawImages { name, layout, classes, color, size, fit, cache } nested {});

/// The `model` section: f's network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// `ResNet32` or `SmallCnn` (required).
    pub architecture: Option<Architecture>,
    /// The cosine ("normed linear") head of LDAM; default: true with the LDAM loss, which
    /// refuses false, else false.
    pub cosine_head: Option<bool>,
}
merge_struct!(RawModel { architecture, cosine_head } nested {});

/// The `optimizer` section: SGD with momentum and coupled weight decay (dampening 0).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOptimizer {
    /// The base learning rate in (0, 10] (required); `schedule` scales it per epoch.
    pub lr: Option<f64>,
    /// Momentum in [0, 1) (required).
    pub momentum: Option<f64>,
    /// Coupled L2 weight decay in [0, 1] (required).
    pub weight_decay: Option<f64>,
    /// Nesterov momentum (default false; needs momentum > 0).
    pub nesterov: Option<bool>,
}
merge_struct!(RawOptimizer { lr, momentum, weight_decay, nesterov } nested {});

/// The `schedule` section: how long to train and the learning rate of each epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// The number of epochs, >= 1 (required).
    pub epochs: Option<usize>,
    /// Linear warm-up `lr * (e+1)/W` for the first W epochs, at most `epochs` (default 0).
    pub warmup_epochs: Option<usize>,
    /// `(epoch: E, factor: F)`: from 0-based epoch E on, `lr * F` (factors relative to `lr`,
    /// not cumulative); none by default.
    pub milestones: Option<Vec<Milestone>>,
}
merge_struct!(RawSchedule { epochs, warmup_epochs, milestones } nested {});

/// The sampler before and after the deferred epoch (DRS, RS; M2m builds on it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    /// The sampler from `from_epoch` on, e.g. `ClassBalanced` or `Smote` (required when
    /// the section is given).
    pub kind: Option<SamplerKind>,
    /// 0-based epoch from which `kind` applies; before it the natural sampler is used.
    pub from_epoch: Option<usize>,
}
merge_struct!(RawSampler { kind, from_epoch } nested {});

/// The training loss (algorithm.md §8.2); cross-entropy with unit weights when left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoss {
    /// `CrossEntropy` (the default), `Focal(..)`, `Ldam(..)` or `LogitAdjusted(..)`.
    pub kind: Option<LossKind>,
    /// Per-class loss weights from a deferred epoch; unit weights when left out.
    pub weighting: Option<RawWeighting>,
    /// How weighted losses average over a batch; required once `weighting` is set.
    pub weighted_mean: Option<WeightedMean>,
}
merge_struct!(RawLoss { kind, weighted_mean } nested { weighting });

/// Per-class loss weights from a 0-based epoch on (unit weights before it): RW, CB-RW
/// from epoch 0, DRW and LDAM-DRW from the first LR drop.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeighting {
    /// `Uniform`, `InverseFrequency` or `EffectiveNumber(beta: ..)` (required when the
    /// section is given).
    pub kind: Option<ClassWeighting>,
    /// The 0-based epoch the weights start at, at most `schedule.epochs` (default 0).
    pub from_epoch: Option<usize>,
}
merge_struct!(RawWeighting { kind, from_epoch } nested {});

/// Where M2m's baseline classifier g comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BaselineSource {
    /// Train an ERM run of the same recipe first (cached and reused), with this seed.
    TrainErm {
        /// The training seed of the ERM run (its initialisation, sampling and
        /// augmentation); everything else is the recipe's.
        seed: u64,
    },
    /// A model saved by `m2m` (the path without extension, e.g. `runs/x/model-best-val`),
    /// a finished run directory (its best-validation model), or a PyTorch (legacy `.t7`,
    /// zip `.pt`/`.pth`) or safetensors ResNet-32 checkpoint, imported on load.
    Checkpoint(PathBuf),
    /// In a suite: the best-validation model of this method's cell with the same data
    /// set, ratio, data seed and seed (`Method("ERM")`, as the reference's run.sh uses its
    /// ERM run). The suite resolves it to that cell's folder and trains that cell first.
    Method(String),
}

/// f's starting point at 0-based epoch `epoch`: either the network (and SGD momentum,
/// where the file has it) of a checkpoint, continued with the recipe's LR schedule there
/// (the reference's `--net_t`: its ERM network after 160 epochs, continued by M2m), or an
/// exact fork of another run whose recipe trains the same first `epoch` epochs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStartFrom {
    /// A PyTorch/safetensors ResNet-32 file, a model saved by m2m (path without extension)
    /// or a finished run directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PathBuf>,
    /// A run directory that kept its checkpoint of epoch `epoch` (`m2m train --keep-epochs`,
    /// or a suite's prefix): the run continues it exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<PathBuf>,
    /// The first epoch to train (0-based): the checkpoint holds f after `epoch` epochs.
    pub epoch: Option<usize>,
}
merge_struct!(RawStartFrom { checkpoint, run, epoch } nested {});

/// M2m (algorithm.md §4): translation settings and the deferred start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawM2m {
    /// The baseline classifier g (required).
    pub g: Option<BaselineSource>,
    /// Seed weight and acceptance β in (0, 1): `1 - β^max(N_k0 - N_k, 0)` (default 0.999).
    pub beta: Option<f64>,
    /// Weight of f's seed-class logit in the translation objective, >= 0 (default 0.5).
    pub lambda: Option<f64>,
    /// Acceptance threshold on g's softmax for the target class, > 0 (default 0.9;
    /// above 1 accepts nothing, reducing M2m to DRS).
    pub gamma: Option<f64>,
    /// L2 step size of each optimisation step in [0, 1] pixel space, > 0 (default 0.1).
    pub step_size: Option<f64>,
    /// Number of optimisation steps T, >= 1 (default 10).
    pub steps: Option<usize>,
    /// How the random start around the seed is drawn: `ReferenceChannelwise` (the
    /// default), `PerSample` or no random start, which must be written `Some(None)`: a bare
    /// `None` reads as the field left out, i.e. the default.
    pub random_start: Option<RandomStart>,
    /// L2 radius of the random start, >= 0 (default 0.5).
    pub start_radius: Option<f64>,
    /// How each slot's seed is drawn: `PerSample` as the reference code does (the default)
    /// or `ClassFirst` as the paper describes (docs/recipes.md).
    pub seed_selection: Option<SeedSelection>,
    /// 0-based epoch from which batches come from the class-balanced sampler and are translated.
    pub from_epoch: Option<usize>,
}
merge_struct!(RawM2m { g, beta, lambda, gamma, step_size, steps, random_start, start_radius, seed_selection, from_epoch } nested {});
