//! The recipe exactly as written in a RON file: every field optional, unknown fields
//! rejected. Files are merged (`base:` first, then the file, then `--set` overrides)
//! at this level and only then checked into a [`super::Recipe`].

use std::path::PathBuf;

use m2m_core::imbalance::ImbalanceProfile;
use m2m_core::loss::{LossKind, WeightedMean};
use m2m_core::sampling::SamplerKind;
use m2m_core::schedule::Milestone;
use m2m_core::translation::RandomStart;
use m2m_core::weighting::ClassWeighting;
use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::data::images::{ClassList, Color, Fit, ImageCache, ImageLayout, ImageSize};
use crate::data::{Augmentation, DatasetName, EvalSplit, Normalization, Selection};
use crate::model::Architecture;

/// Field-wise "take mine, else theirs" for the raw recipe tree.
pub trait Merge {
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecipe {
    /// Another recipe this one starts from, relative to this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    pub name: Option<String>,
    pub dataset: Option<RawDataset>,
    pub model: Option<RawModel>,
    pub optimizer: Option<RawOptimizer>,
    pub schedule: Option<RawSchedule>,
    pub sampler: Option<RawSampler>,
    pub loss: Option<RawLoss>,
    pub m2m: Option<RawM2m>,
    /// Start f from a checkpoint at a given epoch instead of from scratch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_from: Option<RawStartFrom>,
    pub batch_size: Option<usize>,
    pub eval_batch_size: Option<usize>,
    /// Post-hoc logit adjustment τ: validation and test predict `argmax z - τ log π`.
    pub eval_logit_adjustment: Option<f64>,
    pub seed: Option<u64>,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataset {
    /// A built-in data set; leave it out for `images`.
    pub name: Option<DatasetName>,
    /// Users' image files (folders or split files) under `path`; instead of `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<RawImages>,
    pub path: Option<PathBuf>,
    pub imbalance: Option<RawImbalance>,
    pub ratio: Option<f64>,
    pub max_per_class: Option<usize>,
    pub selection: Option<Selection>,
    pub data_seed: Option<u64>,
    pub eval_split: Option<EvalSplit>,
    pub max_eval_per_class: Option<usize>,
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
    Step { minority_start: usize },
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
    pub layout: Option<ImageLayout>,
    /// `Sorted` (the default) or `Listed([...])`.
    pub classes: Option<ClassList>,
    pub color: Option<Color>,
    pub size: Option<ImageSize>,
    /// `Exact` (the default), `Resize`, `CenterCrop` or `ResizeCenterCrop`.
    pub fit: Option<Fit>,
    /// `Auto` (the default), `Off` or `Folder("...")`.
    pub cache: Option<ImageCache>,
}
merge_struct!(RawImages { name, layout, classes, color, size, fit, cache } nested {});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub architecture: Option<Architecture>,
    pub cosine_head: Option<bool>,
}
merge_struct!(RawModel { architecture, cosine_head } nested {});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOptimizer {
    pub lr: Option<f64>,
    pub momentum: Option<f64>,
    pub weight_decay: Option<f64>,
    pub nesterov: Option<bool>,
}
merge_struct!(RawOptimizer { lr, momentum, weight_decay, nesterov } nested {});

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    pub epochs: Option<usize>,
    pub warmup_epochs: Option<usize>,
    pub milestones: Option<Vec<Milestone>>,
}
merge_struct!(RawSchedule { epochs, warmup_epochs, milestones } nested {});

/// The sampler before and after the deferred epoch (DRS, RS; M2m builds on it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSampler {
    pub kind: Option<SamplerKind>,
    /// 0-based epoch from which `kind` applies; before it the natural sampler is used.
    pub from_epoch: Option<usize>,
}
merge_struct!(RawSampler { kind, from_epoch } nested {});

/// The training loss (algorithm.md §8.2); cross-entropy with unit weights when left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoss {
    pub kind: Option<LossKind>,
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
    pub kind: Option<ClassWeighting>,
    pub from_epoch: Option<usize>,
}
merge_struct!(RawWeighting { kind, from_epoch } nested {});

/// Where M2m's baseline classifier g comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BaselineSource {
    /// Train an ERM run of the same recipe first (cached and reused), with this seed.
    TrainErm { seed: u64 },
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
    pub g: Option<BaselineSource>,
    pub beta: Option<f64>,
    pub lambda: Option<f64>,
    pub gamma: Option<f64>,
    pub step_size: Option<f64>,
    pub steps: Option<usize>,
    pub random_start: Option<RandomStart>,
    pub start_radius: Option<f64>,
    /// 0-based epoch from which batches come from the class-balanced sampler and are translated.
    pub from_epoch: Option<usize>,
}
merge_struct!(RawM2m { g, beta, lambda, gamma, step_size, steps, random_start, start_radius, from_epoch } nested {});
