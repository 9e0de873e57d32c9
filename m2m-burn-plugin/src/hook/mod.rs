//! M2m as a burn-train hook: add it to an existing burn-train project in a few lines.
//!
//! ```ignore
//! let hook = M2mHook::new(M2mSettings::new(from_epoch, batch_size), g, dataset, batcher, |item| item.label as usize, &device)?;
//! let training = SupervisedTraining::new(dir, hook.dataloader(), dataloader_valid) /* ...as before */;
//! let result = training.launch(Learner::new(hook.model(model)?, optimizer, lr));
//! ```
//!
//! [`M2mHook`]'s documentation has a complete, runnable example: a model, a batch, a
//! `Dataset` and a `Batcher` of your own, the hook and its data loader.
//!
//! The hook owns the training sampler: [`M2mHook::dataloader`] draws your `Dataset`
//! through your `Batcher` in natural order before `from_epoch` and class-balanced from it
//! on, every epoch from its own seeded stream, so a resumed run sees the same batches.
//! [`M2mHook::model`] wraps your model; its `TrainStep` translates each batch (from
//! `from_epoch` on) and then runs your own `TrainStep`. Your model implements
//! [`Classifier`] (logits for images in [0, 1]) and your batch [`M2mBatch`]. Models whose
//! layers ignore evaluation mode under autodiff, and batches whose images leave [0, 1] (a
//! batcher that normalises), are refused at start-up with the fix (see [`crate::nn`]). The `m2m` CLI draws its batches and translations through the same
//! sampler and [`M2mSchedule`]: the same seed gives the same batches and translations.
//!
//! Your `TrainStep` runs inside [`m2m_core::seed::seeded_draws`] with a seed of its own
//! per step (the run's seed, the epoch, the batch's index), so the masks of
//! [`crate::nn::Dropout`] are the same in every run and on every thread count, whatever
//! else the process draws meanwhile. burn's own `Dropout` is refused (it drops during
//! translation); layers of your own that draw from burn's generator should draw through
//! [`m2m_core::seed::scoped_draw`] to get the same guarantee.

mod batch;
mod epoch;
mod guard;
mod loader;
mod model;
mod strategy;

use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use m2m_core::classifier::InputNormalization;
use m2m_core::translation::TranslationConfig;

pub use batch::{ImageTensor, M2mBatch, M2mInput};
pub use guard::{check_eval_mode, check_pixel_range, EvalModeError, PixelRangeError};
pub use loader::M2mDataLoader;
pub use m2m_core::classifier::{Classifier, Mode};
pub use model::{EpochReport, M2mModel};
pub use strategy::{fusion_safe, FusionSafe};

pub use crate::learning_checkpoint::{CheckpointFault, FaultCause};

/// What the macros [`m2m_batch!`](crate::m2m_batch) and [`classifier!`](crate::classifier)
/// expand to refers to burn through here (your crate may name burn differently).
#[doc(hidden)]
pub mod __private {
    pub use burn::tensor::backend::Backend;
    pub use burn::tensor::Tensor;
}

use crate::m2m::{M2m, M2mSchedule};
use guard::class_count;
use loader::EpochCounter;
use model::Translator;

/// M2m's settings for a hooked run.
#[derive(Debug, Clone, PartialEq)]
pub struct M2mSettings {
    /// The first epoch (0-based) with the class-balanced sampler and translations (the
    /// paper: 160 of 200).
    pub from_epoch: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Seed of the sampling and translation streams.
    pub seed: u64,
    /// How M2m translates and accepts (step size, steps, lambda, gamma, beta, random
    /// start); default: the paper's settings.
    pub translation: TranslationConfig,
    /// The epoch burn-train starts at: 0, or `n` when it resumes with `.checkpoint(n)`.
    pub starting_epoch: usize,
    /// Where M2m's statistics of each epoch go as TensorBoard scalars (`m2m/...`), if anywhere.
    pub tensorboard: Option<std::path::PathBuf>,
    /// How your batcher normalises pixels, `(mean, std)` per channel (`None`: it gives
    /// pixels in [0, 1]); checked when the hook is built.
    pub normalization: Option<(Vec<f32>, Vec<f32>)>,
}

impl M2mSettings {
    /// The paper's translation settings, seed 0, starting at epoch 0.
    pub fn new(from_epoch: usize, batch_size: usize) -> Self {
        Self {
            from_epoch,
            batch_size,
            seed: 0,
            translation: TranslationConfig::default(),
            starting_epoch: 0,
            tensorboard: None,
            normalization: None,
        }
    }
    /// Your batcher gives `(pixel - mean) / std` per channel for pixels in [0, 1] (one
    /// value of each for all channels, or one per channel): M2m translates the pixels and
    /// hands your model and its batches normalised images, so neither needs to change.
    pub fn normalized(mut self, mean: impl Into<Vec<f32>>, std: impl Into<Vec<f32>>) -> Self {
        self.normalization = Some((mean.into(), std.into()));
        self
    }
    /// The seed of the sampling and translation streams (default 0): the same seed gives
    /// the same batches and translations.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Translation settings other than the paper's (build them with
    /// `TranslationParams::check`).
    pub fn with_translation(mut self, translation: TranslationConfig) -> Self {
        self.translation = translation;
        self
    }
    /// M2m's statistics of each epoch (attempts, acceptance overall and per target class,
    /// g's confidence, f's probabilities) as TensorBoard scalars in `dir`, beside what
    /// `TensorBoardLogger` writes for burn-train's metrics (the same `dir` makes them one run).
    pub fn with_tensorboard(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.tensorboard = Some(dir.into());
        self
    }
    /// Resuming: the epoch count burn-train resumes after (`SupervisedTraining::checkpoint(n)`).
    pub fn resuming_after(mut self, epoch: usize) -> Self {
        self.starting_epoch = epoch;
        self
    }
}

/// Why the hook refused to start.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// [`M2mSettings::batch_size`] is 0.
    #[error("batch_size must be >= 1")]
    BatchSize,
    /// The training `Dataset` has no items.
    #[error("the training data set is empty")]
    EmptyDataset,
    /// The training `Dataset`'s `get` gave `None` for an index below its `len()`.
    #[error("the training data set returned no item {index} although its len() is {len}")]
    MissingItem {
        /// The index `get` gave nothing for.
        index: usize,
        /// The data set's `len()`.
        len: usize,
    },
    /// A training item's label (as the `label` closure read it) is not one of g's classes.
    #[error("training item {index} has label {label}, but g has {classes} classes (labels 0..{classes})")]
    Label {
        /// The item's index in the data set.
        index: usize,
        /// Its label.
        label: usize,
        /// The number of g's logits.
        classes: usize,
    },
    /// f (given to [`M2mHook::model`]) and g give different numbers of logits.
    #[error("f has {f} classes but g has {g}")]
    ClassCount {
        /// The number of f's logits.
        f: usize,
        /// The number of g's logits.
        g: usize,
    },
    /// f or g is not deterministic, or depends on the rest of the batch, in evaluation mode.
    #[error(transparent)]
    EvalMode(#[from] EvalModeError),
    /// The batcher's images are not pixels in [0, 1] (after undoing
    /// [`M2mSettings::normalized`], if set).
    #[error(transparent)]
    PixelRange(#[from] PixelRangeError),
    /// [`M2mSettings::normalized`]'s mean and std are invalid, or do not match the images'
    /// channels.
    #[error(transparent)]
    Normalization(#[from] m2m_core::classifier::NormalizationError),
}

/// M2m for one burn-train run: the training data loader and the model wrapper, sharing
/// one epoch counter and one generator. See the module docs.
///
/// # Example
///
/// A linear classifier of 2x2 images, 12 items of class 0 and 4 of class 1, M2m from
/// epoch 1 (0-based):
///
/// ```
/// use burn::data::dataloader::batcher::Batcher;
/// use burn::data::dataset::InMemDataset;
/// use burn::module::Module;
/// use burn::nn::{Linear, LinearConfig};
/// use burn::tensor::backend::Backend;
/// use burn::tensor::{Tensor, TensorData};
/// use m2m_burn_plugin::backend::Cpu;
/// use m2m_burn_plugin::hook::{M2mHook, M2mSettings};
///
/// // Your model, and how M2m reads its logits from images `[n, c, h, w]`.
/// #[derive(Module, Debug)]
/// struct Model<B: Backend> {
///     linear: Linear<B>,
/// }
/// m2m_burn_plugin::classifier!(Model, |model, images| model.linear.forward(images.flatten(1, 3)));
///
/// // Your batch, and the field that holds its images (pixels in [0, 1]).
/// #[derive(Clone, Debug)]
/// struct ImageBatch<B: Backend> {
///     images: Tensor<B, 4>,
/// }
/// m2m_burn_plugin::m2m_batch!(ImageBatch, images);
///
/// // Your data set's items and your batcher.
/// #[derive(Clone, Debug)]
/// struct Item {
///     pixels: [f32; 4],
///     label: usize,
/// }
/// #[derive(Clone)]
/// struct ItemBatcher;
/// impl<B: Backend> Batcher<B, Item, ImageBatch<B>> for ItemBatcher {
///     fn batch(&self, items: Vec<Item>, device: &B::Device) -> ImageBatch<B> {
///         let pixels: Vec<f32> = items.iter().flat_map(|item| item.pixels).collect();
///         ImageBatch { images: Tensor::from_data(TensorData::new(pixels, [items.len(), 1, 2, 2]), device) }
///     }
/// }
///
/// let device = Default::default();
/// let items: Vec<Item> =
///     (0..16).map(|i| Item { pixels: [i as f32 / 16.0; 4], label: usize::from(i >= 12) }).collect();
/// let new_model = || Model::<Cpu> { linear: LinearConfig::new(4, 2).init(&device) };
/// // g: in a real run, your model trained by ERM on the same data (the hook copies and freezes it).
/// let (g, f) = (new_model(), new_model());
///
/// let settings = M2mSettings::new(1, 4); // M2m from epoch 1, batches of 4
/// let hook = M2mHook::new(settings, g, InMemDataset::new(items), ItemBatcher, |item: &Item| item.label, &device)?;
///
/// let loader = hook.dataloader(); // for `SupervisedTraining::new`
/// for epoch in 0..2 {
///     // burn-train calls `iter()` once per epoch: epoch 0 has every item once (shuffled),
///     // epoch 1 is drawn class-balanced.
///     let batches: Vec<_> = loader.iter().collect();
///     assert_eq!(batches.len(), 4);
///     for input in batches {
///         assert_eq!(input.epoch, epoch);
///         assert_eq!(input.labels.len(), 4);
///         assert_eq!(input.batch.images.dims(), [4, 1, 2, 2]);
///     }
/// }
/// // For `Learner::new` (training also needs your model's `TrainStep` on `ImageBatch`).
/// let model = hook.model(f)?;
/// # let _ = model;
/// # Ok::<(), m2m_burn_plugin::hook::HookError>(())
/// ```
pub struct M2mHook<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>, I, O> {
    loader: Arc<M2mDataLoader<B, I, O>>,
    translator: Arc<Mutex<Translator<B, M>>>,
    /// A first batch's images, to check f at [`M2mHook::model`].
    probe: burn::tensor::Tensor<B, 4>,
}

impl<B, M, I, O> M2mHook<B, M, I, O>
where
    B: AutodiffBackend,
    M: Classifier<B> + AutodiffModule<B>,
    I: Send + Sync + 'static,
    O: M2mBatch<B> + Send + 'static,
{
    /// Reads every item's label (once), counts the classes, checks g, and builds the
    /// training loader. `g` is the baseline classifier (an ERM model of your model's type,
    /// trained on the same data); it is copied and frozen. `label` gives an item's class.
    pub fn new<D, T, L>(
        settings: M2mSettings,
        g: M,
        dataset: D,
        batcher: T,
        label: L,
        device: &B::Device,
    ) -> Result<Self, HookError>
    where
        D: Dataset<I> + 'static,
        T: Batcher<B, I, O> + 'static,
        L: Fn(&I) -> usize,
    {
        if settings.batch_size == 0 {
            return Err(HookError::BatchSize);
        }
        let input = match &settings.normalization {
            Some((mean, std)) => Some(InputNormalization::new(mean.clone(), std.clone())?),
            None => None,
        };
        let (labels, probe_items) = read_labels(&dataset, label)?;
        let probe = batcher.batch(probe_items, device).images();
        if let Some(n) = &input {
            n.check_channels(probe.dims()[1])?;
        }
        check_pixel_range(&input.as_ref().map_or_else(|| probe.clone(), |n| n.pixels(probe.clone())))?;
        check_eval_mode(&g, probe.clone(), "g")?;
        let classes = class_count(&g, probe.clone());
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &y)| y >= classes) {
            return Err(HookError::Label { index, label, classes });
        }
        let schedule = M2mSchedule { from_epoch: settings.from_epoch, seed: settings.seed };
        let loader = M2mDataLoader::new(
            Arc::new(dataset),
            Arc::new(batcher),
            labels,
            classes,
            schedule.sampler(),
            settings.seed,
            settings.batch_size,
            Arc::new(EpochCounter::starting_at(settings.starting_epoch)),
            device.clone(),
        );
        let mut generator = M2m::new(&g, loader.class_counts(), settings.translation.clone());
        if let Some(input) = input {
            generator = generator.with_input_normalization(input);
        }
        let board = settings.tensorboard.as_deref().and_then(event_writer);
        let translator = Translator::new(generator, schedule, board);
        Ok(Self { loader: Arc::new(loader), translator: Arc::new(Mutex::new(translator)), probe })
    }

    /// The training data loader for `SupervisedTraining::new`.
    pub fn dataloader(&self) -> Arc<dyn DataLoader<B, M2mInput<O>>> {
        self.loader.clone()
    }

    /// The loader itself (its epochs' batch indices, for inspection).
    pub fn loader(&self) -> &M2mDataLoader<B, I, O> {
        &self.loader
    }

    /// Your model `f`, checked and wrapped for `Learner::new`.
    pub fn model(&self, f: M) -> Result<M2mModel<B, M>, HookError> {
        let g_classes = self.translator.lock().expect("M2m translator").generator.num_classes();
        check_eval_mode(&f, self.probe.clone(), "f")?;
        let f_classes = class_count(&f, self.probe.clone());
        if f_classes != g_classes {
            return Err(HookError::ClassCount { f: f_classes, g: g_classes });
        }
        Ok(M2mModel::new(f, self.translator.clone()))
    }

    /// What M2m did in each epoch so far, the running one included (reading it changes
    /// nothing: the running epoch goes on with its random stream).
    pub fn epochs(&self) -> Vec<EpochReport> {
        self.translator.lock().expect("M2m translator").reports()
    }
}

/// Every item's label (read once, in order) and the first items, for the start-up checks.
fn read_labels<I, D: Dataset<I>>(dataset: &D, label: impl Fn(&I) -> usize) -> Result<(Vec<usize>, Vec<I>), HookError> {
    let len = dataset.len();
    if len == 0 {
        return Err(HookError::EmptyDataset);
    }
    let mut labels = Vec::with_capacity(len);
    let mut probe_items = Vec::new();
    for index in 0..len {
        let item = dataset.get(index).ok_or(HookError::MissingItem { index, len })?;
        labels.push(label(&item));
        if probe_items.len() < 8 {
            probe_items.push(item);
        }
    }
    Ok((labels, probe_items))
}

/// The event file for M2m's statistics in `dir`; `None`, with a warning, when it cannot be made.
fn event_writer(dir: &std::path::Path) -> Option<crate::tensorboard::EventWriter> {
    crate::tensorboard::EventWriter::create(dir)
        .inspect_err(|e| {
            tracing::warn!(
                "TensorBoard: creating an event file in {}: {e}; M2m's statistics are not logged",
                dir.display()
            )
        })
        .ok()
}
