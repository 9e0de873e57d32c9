//! One epoch of the CLI's training loop in steps, shaped like burn-train's single-device
//! epoch: train (with M2m's translations from its deferred epoch on), evaluate on
//! validation and test, draw the accepted translations, save. `strategy.rs` runs them in
//! order and decides after each whether the run goes on.

use std::time::Instant;

use burn::data::dataloader::{DataLoaderIterator, Progress};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Int, Tensor};
use burn::train::{ClassificationOutput, EventProcessorTraining, Learner, LearnerEvent, TrainingItem};
use m2m_core::loss::{weight_tensor, ClassLoss};
use m2m_core::metrics::ClassificationReport;
use m2m_core::translation::GenerationStats;

use super::eval::{evaluate, logit_adjustment, Evaluation};
use super::strategy::{Components, Events, ImbalancedStrategy};
use crate::m2m::gallery::{write_gallery, GalleryItem};
use crate::m2m::FProbabilities;
use crate::model::{Classifier, Mode};
use crate::stop::Stopped;

/// Rows of the gallery of accepted translations written after each M2m epoch.
const GALLERY_ROWS: usize = 8;

/// Running sums of an epoch's training, kept on the device until the epoch ends.
pub(super) struct Totals<B: AutodiffBackend> {
    loss_sum: Option<Tensor<B, 1>>,
    correct: Option<Tensor<B, 1, Int>>,
    seen: usize,
}

impl<B: AutodiffBackend> Totals<B> {
    fn add(&mut self, loss: &Tensor<B, 1>, logits: &Tensor<B, 2>, targets: &Tensor<B, 1, Int>) {
        let n = targets.dims()[0];
        let hits = logits.clone().argmax(1).reshape([n]).equal(targets.clone()).int().sum();
        let weighted = loss.clone().detach().mul_scalar(n as f64);
        self.loss_sum = Some(match self.loss_sum.take() {
            Some(s) => s.add(weighted),
            None => weighted,
        });
        self.correct = Some(match self.correct.take() {
            Some(c) => c.add(hits),
            None => hits,
        });
        self.seen += n;
    }

    /// (mean training loss, training accuracy) over the images seen.
    pub(super) fn finish(self) -> (f64, f64) {
        let seen = self.seen.max(1) as f64;
        let loss = self.loss_sum.map_or(f64::NAN, |s| s.into_scalar().elem::<f64>()) / seen;
        let accuracy = self.correct.map_or(0.0, |c| c.into_scalar().elem::<f64>()) / seen;
        (loss, accuracy)
    }
}

/// What an epoch of training leaves for its record.
pub(super) struct TrainedEpoch<B: AutodiffBackend> {
    pub totals: Totals<B>,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// The first accepted translations of the epoch, for the gallery.
    pub shown: Vec<GalleryItem>,
    /// M2m's statistics, in an M2m epoch.
    pub m2m: Option<GenerationStats>,
    pub class_weights: Option<Vec<f64>>,
}

impl<B: AutodiffBackend> ImbalancedStrategy<B> {
    /// Trains (burn's) `epoch` of `num_epochs` over the epoch's batches, M2m translating
    /// from its deferred epoch on; stops early (returning what it trained) when burn's
    /// interrupter asks, and with `Err` when a signal or a lost lease stops the run.
    pub(super) fn train_epoch(
        &self,
        learner: &mut Learner<Components<B>>,
        (epoch, num_epochs): (usize, usize),
        events: &mut Events<B>,
        interrupter: &burn::train::Interrupter,
    ) -> Result<TrainedEpoch<B>, Stopped> {
        let e0 = epoch - 1;
        let started = Instant::now();
        let counts = &self.groups.train_counts;
        let device = burn::module::Module::devices(&learner.model())[0].clone();
        let loss_fn = ClassLoss::<B>::new(self.loss.kind, self.loss.weighted_mean, counts, &device);
        let class_weights = self.loss.weights_at(e0, counts);
        let weights = class_weights.as_ref().map(|w| weight_tensor::<B>(w, &device));
        let mut m2m = self.m2m.as_ref().and_then(|(m, schedule)| Some((m, schedule.epoch(e0, counts.len())?)));
        let mut f_probabilities = FProbabilities::<B>::default();
        let mut trained = TrainedEpoch {
            totals: Totals { loss_sum: None, correct: None, seen: 0 },
            lr: 0.0,
            shown: Vec::new(),
            m2m: None,
            class_weights,
        };
        self.train.set_epoch(e0);
        let mut iter = self.train.epoch_iter(e0);
        let mut iteration = 0usize;
        while let Some(batch) = iter.next() {
            iteration += 1;
            learner.lr_step();
            trained.lr = learner.lr_current();
            let progress = iter.progress();
            let model = learner.model();
            let (images, generation) = match m2m.as_mut() {
                Some((m, translations)) => {
                    let sampled = batch.images.clone();
                    let (images, generation) = translations.translate(m, &model, batch.images, &batch.labels);
                    let room = GALLERY_ROWS - trained.shown.len();
                    if room > 0 {
                        trained.shown.extend(generation.gallery_items(&sampled, &images, &self.class_names, room));
                    }
                    (images, Some(generation))
                }
                None => (batch.images, None),
            };
            let logits = model.logits(images, Mode::Train);
            if let Some(generation) = generation.as_ref() {
                f_probabilities.add(&logits, generation);
            }
            let loss = loss_fn.forward(logits.clone(), batch.targets.clone(), weights.as_ref());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            learner.optimizer_step(grads);
            trained.totals.add(&loss, &logits, &batch.targets);
            let item = ClassificationOutput::new(loss.detach(), logits.detach(), batch.targets);
            let global = Progress::new(epoch, num_epochs);
            events.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                item,
                progress,
                global,
                Some(iteration),
                Some(trained.lr),
            )));
            if interrupter.should_stop() {
                break;
            }
            if let Some(why) = crate::stop::requested() {
                return Err(why);
            }
        }
        tracing::debug!(
            "epoch {e0}: waited {:.2} s for the input pipeline over {iteration} batches ({:.1} s of training)",
            iter.waited().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        trained.m2m = m2m.map(|(_, t)| {
            let mut stats = t.stats;
            f_probabilities.into_stats(&mut stats);
            stats
        });
        Ok(trained)
    }

    /// Validation through burn's event processor (dashboard, logs), test on the side:
    /// (validation report, test report) of the model after (burn's) `epoch`.
    pub(super) fn evaluate_epoch(
        &self,
        learner: &Learner<Components<B>>,
        (epoch, num_epochs): (usize, usize),
        events: &mut Events<B>,
    ) -> (ClassificationReport, ClassificationReport) {
        let model = learner.model().valid();
        let offsets = logit_adjustment(self.eval_logit_adjustment, &self.groups.train_counts);
        let mut val_eval = Evaluation::adjusted(self.groups.train_counts.len(), offsets.clone());
        for (i, batch) in self.val.batches().enumerate() {
            let logits = model.logits(batch.images.clone(), Mode::Eval);
            let loss = val_eval.add(logits.clone(), &batch);
            events.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                ClassificationOutput::new(loss, logits, batch.targets),
                Progress::new(i + 1, self.val.num_batches()),
                Progress::new(epoch, num_epochs),
                Some(i + 1),
                None,
            )));
        }
        events.process_valid(LearnerEvent::EndEpoch(epoch));
        let test = evaluate(&model, &self.test, &self.groups, offsets);
        (val_eval.report(&self.groups), test)
    }

    /// The gallery of the epoch's first accepted translations (0-based epoch `e0`), as a
    /// PNG written into the run directory; `None` without translations. A picture, not a
    /// result: a failure to draw it is logged and does not stop training.
    pub(super) fn draw_gallery(&self, e0: usize, shown: &[GalleryItem]) -> Option<Vec<u8>> {
        if shown.is_empty() {
            return None;
        }
        let shape = (self.spec.in_channels, self.image_size.0, self.image_size.1);
        match write_gallery(&self.run.translations_path(), shown, shape, 10.0) {
            Ok(png) => Some(png),
            Err(e) => {
                tracing::warn!("epoch {e0}: could not draw the accepted translations: {e:#}");
                None
            }
        }
    }
}
