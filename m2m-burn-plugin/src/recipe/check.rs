//! The validated recipe. Every check names the field it refused.

use std::path::PathBuf;

use m2m_core::imbalance::ImbalanceProfile;
use m2m_core::loss::{LossKind, WeightedMean};
use m2m_core::sampling::SamplerKind;
use m2m_core::schedule::{EpochLrSchedule, ScheduleError};
use m2m_core::translation::{TranslationConfig, TranslationParams};
use m2m_core::weighting::{ClassWeighting, Deferred};
use serde::{Deserialize, Serialize};

use super::raw::*;
use crate::backend::BackendChoice;
use crate::data::images::{ClassList, ImageFiles};
use crate::data::{DataFormat, DataSource, DatasetSpec, EvalSplit, Imbalance, Normalization};
use crate::model::{Architecture, ModelSpec};

/// A recipe field that is missing or out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RecipeError {
    /// The refused field as a dotted path from the recipe's root, e.g. `dataset.ratio`
    /// or `m2m.gamma`.
    pub field: String,
    /// What is wrong with it: missing, or the range it must lie in and the value given.
    pub reason: String,
}

fn err<T>(field: &str, reason: impl Into<String>) -> Result<T, RecipeError> {
    Err(RecipeError { field: field.to_string(), reason: reason.into() })
}

fn need<T>(v: Option<T>, field: &str) -> Result<T, RecipeError> {
    v.ok_or_else(|| RecipeError {
        field: field.to_string(),
        reason: "missing (no value here or in a base recipe)".into(),
    })
}

/// SGD with momentum and coupled weight decay (PyTorch semantics, dampening 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerSpec {
    /// SGD momentum in [0, 1) (`optimizer.momentum`; 0 is plain SGD).
    pub momentum: f64,
    /// Coupled L2 weight decay in [0, 1], added to the gradient (`optimizer.weight_decay`).
    pub weight_decay: f64,
    /// Nesterov momentum (`optimizer.nesterov`, default false; needs momentum > 0).
    pub nesterov: bool,
}

/// Which sampler each epoch uses: natural before `from_epoch`, `value` from it on.
pub type SamplerPlan = Deferred<SamplerKind>;

/// The training loss and its per-class weights, which may start at a deferred epoch
/// (DRW, LDAM-DRW) and are unit weights before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossPlan {
    /// The loss function (`loss.kind`; cross-entropy when left out), its parameters checked.
    pub kind: LossKind,
    /// The per-class weights and the 0-based epoch they start at (`loss.weighting`);
    /// `None`: unit weights throughout.
    pub weighting: Option<Deferred<ClassWeighting>>,
    /// How a weighted loss averages over a batch (`loss.weighted_mean`); `BatchSize` when
    /// no weighting is set, where it makes no difference.
    pub weighted_mean: WeightedMean,
}

impl LossPlan {
    /// Per-class weights in force at `epoch` (`None`: unit weights).
    pub fn weights_at(&self, epoch: usize, counts: &[usize]) -> Option<Vec<f64>> {
        match self.weighting.as_ref()?.at(epoch)? {
            ClassWeighting::Uniform => None,
            w => Some(w.weights(counts)),
        }
    }
}

/// M2m's checked settings: from `from_epoch` on, batches come from the class-balanced
/// sampler and minority slots may be replaced by translated majority seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct M2mPlan {
    /// Where the baseline classifier g comes from (`m2m.g`); never `Method` here, which
    /// only suites resolve.
    pub g: BaselineSource,
    /// The checked translation settings (`m2m.beta` to `m2m.start_radius`, the paper's
    /// CIFAR values where left out).
    pub translation: TranslationConfig,
    /// The 0-based epoch from which M2m translates (`m2m.from_epoch`), at most
    /// `schedule.epochs`.
    pub from_epoch: usize,
}

/// f's checked starting point (the recipe's `start_from` section).
#[derive(Debug, Clone, PartialEq)]
pub enum StartFrom {
    /// A network (and momentum) from a file; the epochs before `epoch` are not in the run.
    Checkpoint {
        /// The file (or saved model, or run directory) f's network is read from.
        checkpoint: PathBuf,
        /// The first 0-based epoch to train, in `1..schedule.epochs`.
        epoch: usize,
    },
    /// An exact fork of the run in `run` after `epoch` epochs: its records, best model
    /// and burn-train checkpoint are taken over, as if this run had trained them.
    Run {
        /// The source run directory, which must have kept its checkpoint of `epoch`.
        run: PathBuf,
        /// The number of epochs taken over, which is also the first 0-based epoch to
        /// train, in `1..schedule.epochs`.
        epoch: usize,
    },
}

/// A checked recipe: every value present and in range.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// The run name: non-empty, no path separator; the run directory is `output_dir/name`.
    pub name: String,
    /// The checked `dataset` section: source, long-tailed subset, evaluation split,
    /// augmentation and normalisation.
    pub dataset: DatasetSpec,
    /// f's network (`model.architecture`).
    pub architecture: Architecture,
    /// Whether f has the cosine ("normed linear") head (`model.cosine_head`; default: true
    /// exactly when the loss is LDAM).
    pub cosine_head: bool,
    /// SGD's settings other than the learning rate, which is in `schedule`.
    pub optimizer: OptimizerSpec,
    /// The number of epochs to train (`schedule.epochs`, >= 1).
    pub epochs: usize,
    /// The learning rate of each epoch: `optimizer.lr` with warm-up and milestones.
    pub schedule: EpochLrSchedule,
    /// The sampler of each epoch (natural throughout when `sampler` is left out; the
    /// class-balanced sampler from `m2m.from_epoch` with M2m).
    pub sampler: SamplerPlan,
    /// The training loss and its per-class weights.
    pub loss: LossPlan,
    /// M2m's settings; `None` for runs without M2m.
    pub m2m: Option<M2mPlan>,
    /// Where f starts when not from scratch: a checkpoint or a fork of another run.
    pub start_from: Option<StartFrom>,
    /// The training batch size, >= 1 (an epoch's last batch may be smaller).
    pub batch_size: usize,
    /// The batch size of validation and test, >= 1 (default 256).
    pub eval_batch_size: usize,
    /// τ of the post-hoc logit adjustment at evaluation (0: plain argmax).
    pub eval_logit_adjustment: f64,
    /// The training seed: model initialisation, sampling and augmentation (the data
    /// subset has its own `dataset.data_seed`).
    pub seed: u64,
    /// The folder that holds the run directory (default `runs`).
    pub output_dir: PathBuf,
    /// The backend the recipe asks for (the command line may override it).
    pub backend: BackendChoice,
    /// Whether training writes TensorBoard event files (`tensorboard/` in the run).
    pub tensorboard: bool,
    /// The merged raw form this recipe was checked from (written to run directories).
    pub raw: RawRecipe,
}

impl Recipe {
    /// The run directory, `output_dir/name`.
    pub fn run_dir(&self) -> PathBuf {
        self.output_dir.join(&self.name)
    }

    /// f's network for data of `format` (from the prepared data or a run's manifest).
    pub fn model_spec(&self, format: &DataFormat) -> ModelSpec {
        ModelSpec {
            architecture: self.architecture,
            cosine_head: self.cosine_head,
            in_channels: format.channels,
            num_classes: format.num_classes(),
            mean: format.mean.clone(),
            std: format.std.clone(),
        }
    }
}

fn finite_in(field: &str, v: f64, lo: f64, hi: f64, what: &str) -> Result<f64, RecipeError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(v)
    } else {
        err(field, format!("must be {what}, got {v}"))
    }
}

impl RawRecipe {
    /// Checks a merged raw recipe (no `base` left to resolve): each section on its own, in
    /// the order a reader meets them, then the fields that tie sections together.
    pub fn check(&self) -> Result<Recipe, RecipeError> {
        let name = need(self.name.clone(), "name")?;
        if name.is_empty() || name.contains(['/', '\\']) {
            return err("name", "must be non-empty and contain no path separator");
        }
        let dataset = check_dataset(need(self.dataset.as_ref(), "dataset")?)?;
        let m = need(self.model.clone(), "model")?;
        let architecture = need(m.architecture, "model.architecture")?;
        let loss = check_loss(self.loss.as_ref())?;
        let cosine_head = check_head(m.cosine_head, &loss.kind)?;
        let (lr, optimizer) = check_optimizer(need(self.optimizer.as_ref(), "optimizer")?)?;
        let (epochs, schedule) = check_schedule(need(self.schedule.as_ref(), "schedule")?, lr)?;
        let m2m = self.m2m.as_ref().map(|m| check_m2m(m, epochs)).transpose()?;
        let sampler = check_sampler(self.sampler.as_ref(), m2m.as_ref(), epochs)?;
        if let Some(w) = loss.weighting.as_ref().filter(|w| w.from_epoch > epochs) {
            return err("loss.weighting.from_epoch", format!("{} is past schedule.epochs = {epochs}", w.from_epoch));
        }
        let start_from = self.start_from.as_ref().map(|st| check_start_from(st, epochs)).transpose()?;
        let (batch_size, eval_batch_size, eval_logit_adjustment) = self.check_batches()?;
        let mut raw = self.clone();
        raw.base = None;
        Ok(Recipe {
            name,
            dataset,
            architecture,
            cosine_head,
            optimizer,
            epochs,
            schedule,
            sampler,
            loss,
            m2m,
            start_from,
            batch_size,
            eval_batch_size,
            eval_logit_adjustment,
            seed: need(self.seed, "seed")?,
            output_dir: self.output_dir.clone().unwrap_or_else(|| PathBuf::from("runs")),
            backend: self.backend.unwrap_or(BackendChoice::Cpu),
            tensorboard: self.tensorboard.unwrap_or(true),
            raw,
        })
    }

    /// (batch_size, eval_batch_size, eval_logit_adjustment).
    fn check_batches(&self) -> Result<(usize, usize, f64), RecipeError> {
        let batch_size = need(self.batch_size, "batch_size")?;
        if batch_size == 0 {
            return err("batch_size", "must be >= 1");
        }
        let eval_batch_size = self.eval_batch_size.unwrap_or(256);
        if eval_batch_size == 0 {
            return err("eval_batch_size", "must be >= 1");
        }
        let adjustment = self.eval_logit_adjustment.unwrap_or(0.0);
        let adjustment = finite_in("eval_logit_adjustment", adjustment, 0.0, f64::MAX, "finite and >= 0")?;
        Ok((batch_size, eval_batch_size, adjustment))
    }
}

/// `model.cosine_head`: LDAM needs the cosine head; left out, it follows the loss.
fn check_head(cosine_head: Option<bool>, loss: &LossKind) -> Result<bool, RecipeError> {
    match (cosine_head, loss) {
        (Some(false), LossKind::Ldam { .. }) => {
            err("model.cosine_head", "LDAM works on cosine logits: make it true or leave it out")
        }
        (Some(c), _) => Ok(c),
        // LDAM-DRW's model uses the normed-linear head iff the loss is LDAM (algorithm.md §8.1).
        (None, kind) => Ok(matches!(kind, LossKind::Ldam { .. })),
    }
}

/// The `optimizer` section: (base learning rate, the rest).
fn check_optimizer(o: &RawOptimizer) -> Result<(f64, OptimizerSpec), RecipeError> {
    let lr = finite_in("optimizer.lr", need(o.lr, "optimizer.lr")?, f64::MIN_POSITIVE, 10.0, "in (0, 10]")?;
    let momentum = need(o.momentum, "optimizer.momentum")?;
    let weight_decay = need(o.weight_decay, "optimizer.weight_decay")?;
    let optimizer = OptimizerSpec {
        momentum: finite_in("optimizer.momentum", momentum, 0.0, 0.999_999, "in [0, 1)")?,
        weight_decay: finite_in("optimizer.weight_decay", weight_decay, 0.0, 1.0, "in [0, 1]")?,
        nesterov: o.nesterov.unwrap_or(false),
    };
    if optimizer.nesterov && optimizer.momentum == 0.0 {
        return err("optimizer.nesterov", "needs optimizer.momentum > 0");
    }
    Ok((lr, optimizer))
}

/// The `schedule` section over base learning rate `lr`: (epochs, the learning rate per epoch).
fn check_schedule(s: &RawSchedule, lr: f64) -> Result<(usize, EpochLrSchedule), RecipeError> {
    let epochs = need(s.epochs, "schedule.epochs")?;
    if epochs == 0 {
        return err("schedule.epochs", "must be >= 1");
    }
    let warmup = s.warmup_epochs.unwrap_or(0);
    if warmup > epochs {
        return err("schedule.warmup_epochs", format!("{warmup} is more than schedule.epochs = {epochs}"));
    }
    let schedule = EpochLrSchedule::new(lr, warmup, s.milestones.clone().unwrap_or_default(), epochs).map_err(|e| {
        let field = match e {
            ScheduleError::BaseLr(_) => "optimizer.lr",
            ScheduleError::WarmupOverlap(..) => "schedule.warmup_epochs",
            _ => "schedule.milestones",
        };
        RecipeError { field: field.into(), reason: e.to_string() }
    })?;
    Ok((epochs, schedule))
}

/// The `sampler` section, which M2m fixes: the class-balanced sampler from its deferred epoch.
fn check_sampler(
    sampler: Option<&RawSampler>,
    m2m: Option<&M2mPlan>,
    epochs: usize,
) -> Result<SamplerPlan, RecipeError> {
    match (sampler, m2m) {
        // M2m switches to the class-balanced sampler at its deferred epoch (algorithm.md §3).
        (None, Some(m)) => Ok(Deferred::new(SamplerKind::ClassBalanced, m.from_epoch)),
        (Some(sp), Some(m))
            if sp.kind != Some(SamplerKind::ClassBalanced) || sp.from_epoch.unwrap_or(0) != m.from_epoch =>
        {
            err("sampler", format!(
                "M2m needs the class-balanced sampler from m2m.from_epoch = {}; leave `sampler` out or make it (kind: ClassBalanced, from_epoch: {})",
                m.from_epoch, m.from_epoch
            ))
        }
        (None, None) => Ok(Deferred::new(SamplerKind::Natural, 0)),
        (Some(sp), _) => {
            let plan = Deferred::new(need(sp.kind, "sampler.kind")?, sp.from_epoch.unwrap_or(0));
            if plan.from_epoch > epochs {
                return err("sampler.from_epoch", format!("{} is past schedule.epochs = {epochs}", plan.from_epoch));
            }
            Ok(plan)
        }
    }
}

/// The `start_from` section: a checkpoint or a run to fork, and the epoch to start after.
fn check_start_from(st: &RawStartFrom, epochs: usize) -> Result<StartFrom, RecipeError> {
    let epoch = need(st.epoch, "start_from.epoch")?;
    if epoch == 0 || epoch >= epochs {
        return err(
            "start_from.epoch",
            format!(
                "must be in 1..{epochs} (schedule.epochs = {epochs} leaves nothing to train from {epoch}), got {epoch}"
            ),
        );
    }
    match (&st.checkpoint, &st.run) {
        (Some(_), Some(_)) => err("start_from.run", "start from a `checkpoint` or from a `run`, not both"),
        (None, None) => {
            err("start_from.checkpoint", "missing: name a `checkpoint` file or a `run` directory to start from")
        }
        (Some(p), None) | (None, Some(p)) if p.as_os_str().is_empty() => {
            let field = if st.run.is_some() { "start_from.run" } else { "start_from.checkpoint" };
            err(field, "the path is empty")
        }
        (Some(checkpoint), None) => Ok(StartFrom::Checkpoint { checkpoint: checkpoint.clone(), epoch }),
        (None, Some(run)) => Ok(StartFrom::Run { run: run.clone(), epoch }),
    }
}

/// The `dataset` section.
fn check_dataset(d: &RawDataset) -> Result<DatasetSpec, RecipeError> {
    let source = check_source(d)?;
    let imbalance = check_imbalance(d, &source)?;
    if d.max_per_class == Some(0) {
        return err("dataset.max_per_class", "must be >= 1");
    }
    let eval_split = check_eval_split(need(d.eval_split, "dataset.eval_split")?, &source)?;
    if d.max_eval_per_class == Some(0) {
        return err("dataset.max_eval_per_class", "must be >= 1");
    }
    let augmentation = need(d.augmentation, "dataset.augmentation")?;
    let (_, h, w) = source.image_shape();
    if augmentation.crop_padding >= h.min(w) {
        return err("dataset.augmentation.crop_padding", format!("must be smaller than the image ({h}x{w})"));
    }
    let normalization = check_normalization(d.normalization.clone(), &source)?;
    Ok(DatasetSpec {
        source,
        path: d.path.clone(),
        normalization,
        imbalance,
        max_per_class: d.max_per_class,
        selection: need(d.selection, "dataset.selection")?,
        data_seed: need(d.data_seed, "dataset.data_seed")?,
        eval_split,
        max_eval_per_class: d.max_eval_per_class,
        augmentation,
    })
}

/// A built-in data set or image files (with the folder that holds them).
fn check_source(d: &RawDataset) -> Result<DataSource, RecipeError> {
    let source = match (d.name, &d.images) {
        (Some(_), Some(_)) => {
            return err("dataset.images", "a dataset is either a built-in `name` or `images`, not both")
        }
        (None, None) => {
            return err(
                "dataset.name",
                "missing: name a built-in data set (FashionMnist, Mnist, Cifar10, Cifar100) or describe `images`",
            )
        }
        (Some(name), None) => DataSource::Builtin(name),
        (None, Some(images)) => DataSource::Images(Box::new(check_images(images)?)),
    };
    if matches!(source, DataSource::Images(_)) && d.path.is_none() {
        return err("dataset.path", "missing: image-file data sets need the folder that holds the images");
    }
    Ok(source)
}

/// `imbalance` and `ratio`: the long tail to cut, or the training split as it is.
fn check_imbalance(d: &RawDataset, source: &DataSource) -> Result<Imbalance, RecipeError> {
    let imbalance = match need(d.imbalance, "dataset.imbalance")?.profile() {
        None if d.ratio.is_some() => {
            return err("dataset.ratio", "imbalance AsIs keeps the training split's own class counts; leave ratio out")
        }
        None => Imbalance::AsIs,
        Some(profile) => {
            let ratio =
                finite_in("dataset.ratio", need(d.ratio, "dataset.ratio")?, 1.0, f64::MAX, "a finite number >= 1")?;
            Imbalance::Cut { profile, ratio }
        }
    };
    if let (Imbalance::Cut { profile: ImbalanceProfile::Step { minority_start }, .. }, Some(classes)) =
        (imbalance, source.known_class_names().map(|c| c.len()))
    {
        if minority_start == 0 || minority_start >= classes {
            return err(
                "dataset.imbalance.minority_start",
                format!("must be in 1..{classes} for {}, got {minority_start}", source.label()),
            );
        }
    }
    Ok(imbalance)
}

/// Where validation and test images come from.
fn check_eval_split(eval_split: EvalSplit, source: &DataSource) -> Result<EvalSplit, RecipeError> {
    match eval_split {
        EvalSplit::ValFromTest { val_fraction } | EvalSplit::ValFromTrain { val_fraction } => {
            if !(val_fraction.is_finite() && val_fraction > 0.0 && val_fraction < 1.0) {
                return err("dataset.eval_split.val_fraction", format!("must be in (0, 1), got {val_fraction}"));
            }
        }
        EvalSplit::ValSplit => {
            let has_val = matches!(source, DataSource::Images(f) if f.layout.has_val());
            if !has_val {
                return err("dataset.eval_split", format!("ValSplit needs a validation split of the data set's own (`val` in dataset.images.layout); {} has none", source.label()));
            }
        }
        EvalSplit::FullTest => {}
    }
    Ok(eval_split)
}

/// The normalisation: the standard one of a built-in set, the training set's own
/// statistics for image files, or given values (one per channel).
fn check_normalization(n: Option<Normalization>, source: &DataSource) -> Result<Normalization, RecipeError> {
    let channels = source.image_shape().0;
    match (n, source) {
        (None, DataSource::Builtin(_)) => Ok(Normalization::Standard),
        (None, DataSource::Images(_)) => Ok(Normalization::FromTrain),
        (Some(Normalization::Standard), DataSource::Images(_)) => err(
            "dataset.normalization",
            format!(
                "Standard is for built-in data sets; {} needs FromTrain or Given(mean: [..], std: [..])",
                source.label()
            ),
        ),
        (Some(Normalization::Given { mean, std }), _) => {
            if mean.len() != channels || std.len() != channels {
                return err(
                    "dataset.normalization",
                    format!(
                        "needs {channels} mean and {channels} std value(s) (one per channel), got {} and {}",
                        mean.len(),
                        std.len()
                    ),
                );
            }
            if !mean.iter().all(|m| m.is_finite()) || !std.iter().all(|s| s.is_finite() && *s > 0.0) {
                return err(
                    "dataset.normalization",
                    format!("mean must be finite and std finite and > 0, got {mean:?} and {std:?}"),
                );
            }
            Ok(Normalization::Given { mean, std })
        }
        (Some(n), _) => Ok(n),
    }
}

fn check_images(i: &RawImages) -> Result<ImageFiles, RecipeError> {
    let name = need(i.name.clone(), "dataset.images.name")?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "+-_".contains(c)) {
        return err(
            "dataset.images.name",
            format!("`{name}`: use letters, digits, `+`, `-` and `_` (it names runs and report columns)"),
        );
    }
    let classes = i.classes.clone().unwrap_or(ClassList::Sorted);
    if let ClassList::Listed(names) = &classes {
        if names.len() < 2 {
            return err("dataset.images.classes", format!("must list at least two classes, got {}", names.len()));
        }
        if let Some(n) = names.iter().find(|n| n.trim().is_empty() || n.contains(['/', '\\'])) {
            return err(
                "dataset.images.classes",
                format!("`{n}`: class names must be non-empty and contain no path separator"),
            );
        }
        if let Some(dup) = names.iter().enumerate().find_map(|(k, n)| names[..k].contains(n).then_some(n)) {
            return err("dataset.images.classes", format!("`{dup}` appears twice"));
        }
    }
    let size = need(i.size, "dataset.images.size")?;
    if size.height == 0 || size.width == 0 || size.height > 4096 || size.width > 4096 {
        return err(
            "dataset.images.size",
            format!("height and width must be in 1..=4096, got {}x{}", size.height, size.width),
        );
    }
    Ok(ImageFiles {
        name,
        layout: need(i.layout.clone(), "dataset.images.layout")?,
        classes,
        color: need(i.color, "dataset.images.color")?,
        size,
        fit: i.fit.unwrap_or(crate::data::images::Fit::Exact),
        cache: i.cache.clone().unwrap_or_default(),
    })
}

fn check_loss(raw: Option<&RawLoss>) -> Result<LossPlan, RecipeError> {
    let default = RawLoss::default();
    let l = raw.unwrap_or(&default);
    let kind = l.kind.unwrap_or(LossKind::CrossEntropy);
    match kind {
        LossKind::CrossEntropy => {}
        LossKind::Focal { gamma } => {
            finite_in("loss.kind.gamma", gamma, 0.0, f64::MAX, "finite and >= 0")?;
        }
        LossKind::Ldam { max_margin, scale } => {
            if !(max_margin.is_finite() && max_margin > 0.0 && max_margin < 2.0) {
                return err(
                    "loss.kind.max_margin",
                    format!("must be in (0, 2) (cosine logits lie in [-1, 1]), got {max_margin}"),
                );
            }
            if !(scale.is_finite() && scale > 0.0) {
                return err("loss.kind.scale", format!("must be finite and > 0, got {scale}"));
            }
        }
        LossKind::LogitAdjusted { tau } => {
            finite_in("loss.kind.tau", tau, 0.0, f64::MAX, "finite and >= 0")?;
        }
    }
    let weighting = match &l.weighting {
        None => None,
        Some(w) => {
            let value = need(w.kind, "loss.weighting.kind")?;
            if let ClassWeighting::EffectiveNumber { beta } = value {
                finite_in("loss.weighting.kind.beta", beta, 0.0, 1.0, "in [0, 1]")?;
            }
            Some(Deferred::new(value, w.from_epoch.unwrap_or(0)))
        }
    };
    if weighting.is_some() && l.weighted_mean.is_none() {
        return err(
            "loss.weighted_mean",
            "missing: weighted losses need the convention, BatchSize (the M2m code: sum w*l / B) or WeightSum (LDAM-DRW: sum w*l / sum w)",
        );
    }
    Ok(LossPlan { kind, weighting, weighted_mean: l.weighted_mean.unwrap_or(WeightedMean::BatchSize) })
}

/// The translation settings of an `m2m` section (defaults filled in), checked by m2m-core
/// field by field; the error names the recipe field.
pub fn check_translation(m: &RawM2m) -> Result<TranslationConfig, RecipeError> {
    let d = TranslationParams::default();
    TranslationParams {
        beta: m.beta.unwrap_or(d.beta),
        lambda: m.lambda.unwrap_or(d.lambda),
        gamma: m.gamma.unwrap_or(d.gamma),
        step_size: m.step_size.unwrap_or(d.step_size),
        steps: m.steps.unwrap_or(d.steps),
        random_start: m.random_start.unwrap_or(d.random_start),
        start_radius: m.start_radius.unwrap_or(d.start_radius),
        seed_selection: m.seed_selection.unwrap_or(d.seed_selection),
    }
    .check()
    .map_err(|e| RecipeError { field: format!("m2m.{}", e.field()), reason: e.to_string() })
}

fn check_m2m(m: &RawM2m, epochs: usize) -> Result<M2mPlan, RecipeError> {
    let g = need(m.g.clone(), "m2m.g")?;
    let translation = check_translation(m)?;
    let from_epoch = need(m.from_epoch, "m2m.from_epoch")?;
    if from_epoch > epochs {
        return err("m2m.from_epoch", format!("{from_epoch} is past schedule.epochs = {epochs}"));
    }
    match &g {
        BaselineSource::Checkpoint(p) if p.as_os_str().is_empty() => {
            return err("m2m.g", "the checkpoint path is empty")
        }
        BaselineSource::Method(m) => {
            return err(
                "m2m.g",
                format!("Method({m:?}) names a suite method: only suites resolve it (use TrainErm or Checkpoint here)"),
            )
        }
        _ => {}
    }
    Ok(M2mPlan { g, translation, from_epoch })
}
