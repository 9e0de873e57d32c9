//! The model burn-train trains under the hook: the user's model, with M2m translating each
//! training batch before the user's own `TrainStep` sees it.

use std::fmt;
use std::sync::{Arc, Mutex};

use burn::module::{AutodiffModule, Devices, Module, ModuleMapper, ModuleVisitor};
use burn::tensor::backend::AutodiffBackend;
use burn::train::{TrainOutput, TrainStep};
use m2m_core::classifier::Classifier;
use m2m_core::seed::{seeded_draws, step_seed};
use m2m_core::translation::GenerationStats;

use super::batch::{M2mBatch, M2mInput};
use crate::m2m::{EpochTranslations, M2m, M2mSchedule};

/// What M2m did in one epoch of a hooked run.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    /// The epoch, 0-based.
    pub epoch: usize,
    /// Its translations attempted and accepted per target class, and g's confidence in them.
    pub stats: GenerationStats,
}

/// The generator, its schedule and the epochs so far; shared by every copy of the wrapped
/// model (burn-train clones and maps the model at every step).
pub(super) struct Translator<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> {
    pub(super) generator: M2m<B, M>,
    schedule: M2mSchedule,
    current: Option<EpochTranslations>,
    finished: Vec<EpochReport>,
    /// `M2mSettings::with_tensorboard`'s event file.
    board: Option<crate::tensorboard::EventWriter>,
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> Translator<B, M> {
    pub(super) fn new(
        generator: M2m<B, M>,
        schedule: M2mSchedule,
        board: Option<crate::tensorboard::EventWriter>,
    ) -> Self {
        Self { generator, schedule, current: None, finished: Vec::new(), board }
    }

    /// Closes the running epoch (if any) into `finished`, logging what it did.
    fn close_epoch(&mut self) {
        if let Some(t) = self.current.take() {
            let s = &t.stats;
            tracing::info!(
                "M2m epoch {}: accepted {}/{} translations ({} slots)",
                t.epoch,
                s.total_accepted(),
                s.total_attempts(),
                s.slots
            );
            if let Some(w) = self.board.as_mut() {
                if let Err(e) = crate::tensorboard::m2m_scalars(w, s, &[], t.epoch as i64) {
                    tracing::warn!("TensorBoard: {e}; M2m's statistics are not logged any more");
                    self.board = None;
                }
            }
            self.finished.push(EpochReport { epoch: t.epoch, stats: t.stats });
        }
    }

    /// The finished epochs' reports and the running one's so far.
    pub(super) fn reports(&self) -> Vec<EpochReport> {
        let mut all = self.finished.clone();
        all.extend(self.current.as_ref().map(|t| EpochReport { epoch: t.epoch, stats: t.stats.clone() }));
        all
    }

    /// Translates the batch's images when M2m is on in its epoch.
    fn translate<O: M2mBatch<B>>(&mut self, f: &M, input: M2mInput<O>) -> O {
        if self.current.as_ref().is_none_or(|t| t.epoch != input.epoch) {
            self.close_epoch();
            self.current = self.schedule.epoch(input.epoch, self.generator.num_classes());
        }
        let Some(epoch) = self.current.as_mut() else {
            return input.batch;
        };
        let (images, _) = epoch.translate(&self.generator, f, input.batch.images(), &input.labels);
        input.batch.with_images(images)
    }
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> Drop for Translator<B, M> {
    /// Logs the last epoch (the others are logged when the next one starts).
    fn drop(&mut self) {
        self.close_epoch();
    }
}

/// Your model, trained with M2m: build it with [`M2mHook::model`](super::M2mHook::model).
///
/// It is a burn `Module` with your model's record (checkpoints are interchangeable with
/// your model's), its inner module *is* your model's inner module (validation and
/// `result.model` are your types), and its `TrainStep` translates the batch and then runs
/// your `TrainStep` on it.
pub struct M2mModel<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> {
    model: M,
    translator: Option<Arc<Mutex<Translator<B, M>>>>,
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> M2mModel<B, M> {
    pub(super) fn new(model: M, translator: Arc<Mutex<Translator<B, M>>>) -> Self {
        Self { model, translator: Some(translator) }
    }

    /// Your model.
    pub fn inner(&self) -> &M {
        &self.model
    }

    /// Your model, unwrapped (for example to save or evaluate it without M2m).
    pub fn into_inner(self) -> M {
        self.model
    }
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> Clone for M2mModel<B, M> {
    fn clone(&self) -> Self {
        Self { model: self.model.clone(), translator: self.translator.clone() }
    }
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> fmt::Debug for M2mModel<B, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("M2mModel").field("model", &self.model).field("m2m", &self.translator.is_some()).finish()
    }
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B> + fmt::Display> fmt::Display for M2mModel<B, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "M2m({})", self.model)
    }
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> Module<B> for M2mModel<B, M> {
    type Record = M::Record;

    fn collect_devices(&self, devices: Devices<B>) -> Devices<B> {
        self.model.collect_devices(devices)
    }
    fn fork(self, device: &B::Device) -> Self {
        Self { model: self.model.fork(device), translator: self.translator }
    }
    fn to_device(self, device: &B::Device) -> Self {
        Self { model: self.model.to_device(device), translator: self.translator }
    }
    fn visit<V: ModuleVisitor<B>>(&self, visitor: &mut V) {
        self.model.visit(visitor)
    }
    fn map<Mp: ModuleMapper<B>>(self, mapper: &mut Mp) -> Self {
        Self { model: self.model.map(mapper), translator: self.translator }
    }
    fn load_record(self, record: Self::Record) -> Self {
        Self { model: self.model.load_record(record), translator: self.translator }
    }
    fn into_record(self) -> Self::Record {
        self.model.into_record()
    }
}

impl<B: AutodiffBackend, M: Classifier<B> + AutodiffModule<B>> AutodiffModule<B> for M2mModel<B, M> {
    type InnerModule = M::InnerModule;

    fn valid(&self) -> M::InnerModule {
        self.model.valid()
    }

    /// Your model back on the autodiff backend, *without* M2m (burn-train never calls
    /// this; get a hooked model from [`M2mHook::model`](super::M2mHook::model)).
    fn from_inner(module: M::InnerModule) -> Self {
        Self { model: M::from_inner(module), translator: None }
    }
}

impl<B, M, O> TrainStep for M2mModel<B, M>
where
    B: AutodiffBackend,
    M: Classifier<B> + AutodiffModule<B> + TrainStep<Input = O>,
    O: M2mBatch<B> + Send + 'static,
{
    type Input = M2mInput<O>;
    type Output = M::Output;

    /// Translates the batch, then runs your `TrainStep` with its draws on burn's
    /// generator (the masks of [`crate::nn::Dropout`]) seeded from the run's seed, the
    /// epoch and the batch's index ([`m2m_core::seed::seeded_draws`]).
    fn step(&self, input: M2mInput<O>) -> TrainOutput<M::Output> {
        let Some(translator) = &self.translator else {
            return self.model.step(input.batch);
        };
        let (epoch, iteration) = (input.epoch, input.iteration);
        let (batch, seed) = {
            let mut t = translator.lock().expect("M2m translator");
            (t.translate(&self.model, input), t.schedule.seed)
        };
        seeded_draws(step_seed(seed, epoch, iteration), || self.model.step(batch))
    }
}
