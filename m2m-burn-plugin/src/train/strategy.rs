//! The epoch loop: a burn-train `SupervisedLearningStrategy` that keeps burn's learner,
//! optimiser, scheduler, metrics dashboard and checkpointer, and adds what imbalanced
//! training needs: the sampler plan per epoch, evaluation on validation *and* test every
//! epoch, best-validation model selection, NaN detection and a resumable run directory.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::data::dataloader::{DataLoaderIterator, Progress};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor};
use burn::train::{
    ClassificationOutput, EventProcessorTraining, Learner, LearnerEvent, LearningComponentsMarker,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainingComponents, TrainingItem,
};
use m2m_core::loss::{weight_tensor, ClassLoss};
use m2m_core::metrics::ClassGroups;

use super::batch::{EvalLoader, TrainLoader};
use super::eval::{evaluate, logit_adjustment, Evaluation};
use super::scheduler::EpochScheduler;
use crate::learning_checkpoint::{free_bytes, human_size, save_and_wait, FaultCause};
use crate::m2m::gallery::write_gallery;
use crate::m2m::{FProbabilities, M2m, M2mSchedule};
use crate::model::{save_classifier, Classifier, Mode, ModelSpec, Net};
use crate::recipe::LossPlan;
use crate::run_dir::{best_val, EpochRecord, RunDir, RunState};

/// Rows of the gallery of accepted translations written after each M2m epoch.
const GALLERY_ROWS: usize = 8;

pub type Optim<B> =
    burn::optim::adaptor::OptimizerAdaptor<burn::optim::Sgd<<B as AutodiffBackend>::InnerBackend>, Net<B>, B>;
pub type Components<B> = LearningComponentsMarker<B, EpochScheduler, Net<B>, Optim<B>>;

/// Everything the loop needs besides burn's components.
pub struct ImbalancedStrategy<B: AutodiffBackend> {
    pub train: Arc<TrainLoader<B>>,
    pub val: EvalLoader<B::InnerBackend>,
    pub test: EvalLoader<B::InnerBackend>,
    pub groups: ClassGroups,
    pub run: RunDir,
    pub spec: ModelSpec,
    /// The loss and its (possibly deferred) per-class weights.
    pub loss: LossPlan,
    /// τ of the post-hoc logit adjustment of validation and test predictions (0: none).
    pub eval_logit_adjustment: f64,
    /// M2m's generator and when (and with which random stream) it translates.
    pub m2m: Option<(M2m<B, Net<B>>, M2mSchedule)>,
    /// Records of the epochs finished before this launch (resume).
    pub previous: Vec<EpochRecord>,
    /// The first epoch (0-based) this run trains: 0, or `start_from.epoch`.
    pub first_epoch: usize,
    /// Epoch counts whose best model is snapshot for forks (see `super::fork`).
    pub fork_points: Vec<usize>,
    /// Class names and image height and width, for the gallery of accepted translations.
    pub class_names: Vec<String>,
    pub image_size: (usize, usize),
    /// Set when the loop stops on an error (e.g. a NaN loss); read after `launch`.
    pub failure: Arc<Mutex<Option<anyhow::Error>>>,
    /// The run's TensorBoard log, when the recipe keeps one; the training loop adds each
    /// epoch, `train_recipe` the end.
    pub board: Board,
}

/// A run's TensorBoard log, shared by the epoch loop and the code around it. A write
/// that fails is logged and ends the log (`None`), never the training.
pub type Board = Arc<Mutex<Option<crate::tensorboard::RunBoard>>>;

/// Runs `write` on the board, if there is one; a failure ends the log with a warning.
pub fn on_board(board: &Board, write: impl FnOnce(&mut crate::tensorboard::RunBoard) -> std::io::Result<()>) {
    let mut slot = board.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(b) = slot.as_mut() {
        if let Err(e) = write(b) {
            tracing::warn!("TensorBoard: {e}; no more TensorBoard records for this run");
            *slot = None;
        }
    }
}

impl<B: AutodiffBackend> ImbalancedStrategy<B> {
    /// Ends the run stopped in (burn's) `epoch`: after a signal its state says so (a
    /// lost lease leaves the folder to the process that took it over); the failure slot
    /// gets the [`Stopped`](crate::stop::Stopped) reason.
    fn stop(&self, epoch: usize, why: crate::stop::Stopped) {
        let e0 = epoch - 1;
        let mut note = String::new();
        if matches!(why, crate::stop::Stopped::Signal(_)) {
            match self.run.read_state() {
                Ok(Some(mut state)) => {
                    state.stopped = Some(format!("{why} during epoch {e0}"));
                    if let Err(e) = self.run.write_state(&state) {
                        tracing::warn!("recording the stop in {}: {e:#}", self.run.root.display());
                    }
                    note = format!("; it resumes after epoch {}", state.completed_epochs.saturating_sub(1));
                }
                Ok(None) => note = "; it starts again from epoch 0".into(),
                Err(e) => tracing::warn!("{e:#}"),
            }
        }
        let context = format!("{}: epoch {e0} abandoned{note}", self.run.root.display());
        self.fail(anyhow::Error::new(why).context(context));
    }

    fn fail(&self, e: anyhow::Error) {
        *self.failure.lock().expect("failure slot") = Some(e);
    }

    /// After an epoch: the metrics files, the best model and the fork point. burn's
    /// checkpoint and the state file follow ([`Self::checkpoint`]; the state last, so that
    /// it never points at an epoch whose files are missing).
    fn record_epoch(
        &self,
        learner: &Learner<Components<B>>,
        records: &mut Vec<EpochRecord>,
        record: EpochRecord,
        gallery: Option<&[u8]>,
        epoch: usize,
        total: usize,
    ) -> anyhow::Result<()> {
        let is_best = best_val(records).is_none_or(|b| record.val.balanced_accuracy >= b.val.balanced_accuracy);
        if let Some(s) = &record.m2m {
            tracing::info!(
                "epoch {epoch}/{total} M2m: accepted {}/{} translations ({} slots), per class {:?}, g conf {}",
                s.total_accepted(),
                s.total_attempts(),
                s.slots,
                s.acceptance_rate_per_class()
                    .iter()
                    .map(|r| r.map_or("-".into(), |r| format!("{r:.2}")))
                    .collect::<Vec<String>>(),
                s.mean_g_confidence().map_or("-".into(), |c| format!("{c:.3}"))
            );
        }
        tracing::info!(
            "epoch {}/{} lr {:.2e} {:?}: train loss {:.4} acc {:.4} | val bACC {:.4} | test bACC {:.4} GM {:.4} minor {} ({:.1}s){}",
            epoch,
            total,
            record.lr,
            record.sampler,
            record.train_loss,
            record.train_accuracy,
            record.val.balanced_accuracy,
            record.test.balanced_accuracy,
            record.test.geometric_mean,
            record.test.minor.map_or("-".into(), |m| format!("{m:.4}")),
            record.seconds,
            if is_best { " *best val*" } else { "" }
        );
        records.push(record);
        self.run.write_records(records)?;
        if let Some(record) = records.last() {
            on_board(&self.board, |b| b.epoch(record, gallery));
        }
        if is_best {
            save_classifier(&learner.model(), &self.spec, &self.run.best_model_path())?;
        }
        if self.fork_points.contains(&epoch) {
            super::fork::snapshot_best(&self.run, epoch)?;
        }
        Ok(())
    }

    /// burn-train's checkpoint of `epoch` (model, optimiser, scheduler), written before
    /// training goes on (fusion backends race burn-train's checkpointer threads otherwise:
    /// [`crate::learning_checkpoint`]), and read back: training goes on with the values
    /// read, exactly as a run resumed here would. `Err`, with the line to print, when the
    /// write or its read-back failed.
    fn checkpoint(
        &self,
        checkpointer: &mut burn::train::LearningCheckpointer<Components<B>>,
        learner: &Learner<Components<B>>,
        store: &burn::train::metric::store::EventStoreClient,
        interrupter: &burn::train::Interrupter,
        epoch: usize,
    ) -> Result<Learner<Components<B>>, anyhow::Error> {
        let dir = self.run.burn_dir().join("checkpoint");
        save_and_wait(checkpointer, learner, epoch, store, interrupter, &dir).map_err(|fault| {
            let no_space = matches!(fault.cause, FaultCause::NoSpace { .. });
            anyhow::anyhow!(
                "{}: writing burn-train's checkpoint of epoch {} failed: {}; {}",
                dir.display(),
                epoch - 1,
                fault.reason(),
                self.after_write_error(epoch - 1, no_space)
            )
        })
    }

    /// The line for a write of the run's own files (`what`: "saving the results") that
    /// failed in (0-based) epoch `e0`.
    fn write_failed(&self, e0: usize, what: &str, e: anyhow::Error) -> anyhow::Error {
        let no_space = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
                || c.to_string().contains("No space left on device")
        });
        let free = match free_bytes(&self.run.root) {
            Some(free) if no_space => format!(" ({} free)", human_size(free)),
            _ => String::new(),
        };
        let what = format!("{}: {what} of epoch {e0} failed{free}", self.run.root.display());
        anyhow::anyhow!("{what}: {e:#}; {}", self.after_write_error(e0, no_space))
    }

    /// What a run stopped by a write error in epoch `e0` keeps, and how it goes on.
    fn after_write_error(&self, e0: usize, no_space: bool) -> String {
        let kept = match e0 {
            0 => "no epoch was finished yet".to_string(),
            _ => format!("every epoch up to {} is kept", e0 - 1),
        };
        let fix = if no_space { "free some space" } else { "fix the cause" };
        format!("{kept}: {fix}, then run `m2m resume {}`", self.run.root.display())
    }
}

impl<B: AutodiffBackend> SupervisedLearningStrategy<Components<B>> for ImbalancedStrategy<B> {
    fn fit(
        &self,
        tc: TrainingComponents<Components<B>>,
        mut learner: Learner<Components<B>>,
        _train: burn::train::TrainLoader<Components<B>>,
        _valid: burn::train::ValidLoader<Components<B>>,
        starting_epoch: usize,
    ) -> (Net<B>, SupervisedTrainingEventProcessor<Components<B>>) {
        let TrainingComponents { num_epochs, mut checkpointer, interrupter, mut event_processor, event_store, .. } = tc;
        let mut records = self.previous.clone();
        let device = burn::module::Module::devices(&learner.model())[0].clone();
        let counts = &self.groups.train_counts;
        let loss_fn = ClassLoss::<B>::new(self.loss.kind, self.loss.weighted_mean, counts, &device);

        // Set when a signal or a lost lock lease stops the run (crate::stop): the epoch in
        // progress is abandoned, the newest complete one stays the resume point.
        let mut stopped = None;
        // burn counts epochs from 1; a run started from a checkpoint skips the epochs before it.
        for epoch in starting_epoch.max(self.first_epoch + 1)..=num_epochs {
            let e0 = epoch - 1; // recipes count epochs from 0
            let global = Progress::new(epoch, num_epochs);
            let started = Instant::now();
            self.train.set_epoch(e0);
            let mut iter = self.train.epoch_iter(e0);
            let (mut loss_sum, mut correct): (Option<Tensor<B, 1>>, Option<Tensor<B, 1, burn::tensor::Int>>) =
                (None, None);
            let mut seen = 0usize;
            let mut iteration = 0usize;
            let mut lr = 0.0;
            let mut m2m = self.m2m.as_ref().and_then(|(m, schedule)| Some((m, schedule.epoch(e0, counts.len())?)));
            // The first accepted translations of the epoch, drawn into the run directory.
            let mut shown = Vec::new();
            let mut f_probabilities = FProbabilities::<B>::default();
            let class_weights = self.loss.weights_at(e0, counts);
            let weights = class_weights.as_ref().map(|w| weight_tensor::<B>(w, &device));
            while let Some(batch) = iter.next() {
                iteration += 1;
                learner.lr_step();
                lr = learner.lr_current();
                let progress = iter.progress();
                let model = learner.model();
                let n = batch.labels.len();
                let (images, generation) = match m2m.as_mut() {
                    Some((m, translations)) => {
                        let sampled = batch.images.clone();
                        let (images, generation) = translations.translate(m, &model, batch.images, &batch.labels);
                        let room = GALLERY_ROWS - shown.len();
                        if room > 0 {
                            shown.extend(generation.gallery_items(&sampled, &images, &self.class_names, room));
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

                let hits = logits.clone().argmax(1).reshape([n]).equal(batch.targets.clone()).int().sum();
                let weighted = loss.clone().detach().mul_scalar(n as f64);
                loss_sum = Some(match loss_sum {
                    Some(s) => s.add(weighted),
                    None => weighted,
                });
                correct = Some(match correct {
                    Some(c) => c.add(hits),
                    None => hits,
                });
                seen += n;
                let item = ClassificationOutput::new(loss.detach(), logits.detach(), batch.targets);
                event_processor.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                    item,
                    progress,
                    global.clone(),
                    Some(iteration),
                    Some(lr),
                )));
                if interrupter.should_stop() {
                    break;
                }
                if let Some(why) = crate::stop::requested() {
                    stopped = Some((epoch, why));
                    break;
                }
            }
            if stopped.is_some() {
                break;
            }
            tracing::debug!(
                "epoch {e0}: waited {:.2} s for the input pipeline over {iteration} batches ({:.1} s of training)",
                iter.waited().as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            event_processor.process_train(LearnerEvent::EndEpoch(epoch));
            if interrupter.should_stop() {
                break;
            }
            let train_loss = loss_sum.map_or(f64::NAN, |s| s.into_scalar().elem::<f64>()) / seen.max(1) as f64;
            let train_accuracy = correct.map_or(0.0, |c| c.into_scalar().elem::<f64>()) / seen.max(1) as f64;
            if !train_loss.is_finite() {
                self.fail(anyhow::anyhow!(
                    "the training loss became {train_loss} in epoch {e0} (lr {lr:.3e}); stopped without saving this epoch. \
                     The checkpoints of the earlier epochs are kept: lower `optimizer.lr` or check the data"
                ));
                break;
            }

            // Validation through burn's event processor (dashboard, logs), test on the side.
            let model = learner.model().valid();
            let offsets = logit_adjustment(self.eval_logit_adjustment, &self.groups.train_counts);
            let mut val_eval = Evaluation::adjusted(self.groups.train_counts.len(), offsets.clone());
            for (i, batch) in self.val.batches().enumerate() {
                let logits = model.logits(batch.images.clone(), Mode::Eval);
                let loss = val_eval.add(logits.clone(), &batch);
                event_processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                    ClassificationOutput::new(loss, logits, batch.targets),
                    Progress::new(i + 1, self.val.num_batches()),
                    global.clone(),
                    Some(i + 1),
                    None,
                )));
            }
            event_processor.process_valid(LearnerEvent::EndEpoch(epoch));
            let test = evaluate(&model, &self.test, &self.groups, offsets);
            let mut gallery = None;
            if !shown.is_empty() {
                let shape = (self.spec.in_channels, self.image_size.0, self.image_size.1);
                // A picture, not a result: a failure to draw it does not stop training.
                match write_gallery(&self.run.translations_path(), &shown, shape, 10.0) {
                    Ok(png) => gallery = Some(png),
                    Err(e) => tracing::warn!("epoch {e0}: could not draw the accepted translations: {e:#}"),
                }
            }
            let record = EpochRecord {
                epoch: e0,
                lr,
                sampler: self.train.sampler_at(e0),
                class_weights,
                seconds: started.elapsed().as_secs_f64(),
                train_loss,
                train_accuracy,
                val: val_eval.report(&self.groups),
                test,
                m2m: m2m.map(|(_, t)| {
                    let mut stats = t.stats;
                    f_probabilities.into_stats(&mut stats);
                    stats
                }),
            };
            if let Some(why) = crate::stop::requested() {
                stopped = Some((epoch, why));
                break;
            }
            if let Err(e) = self.record_epoch(&learner, &mut records, record, gallery.as_deref(), epoch, num_epochs) {
                self.fail(self.write_failed(e0, "saving the results", e));
                break;
            }
            if let Some(c) = checkpointer.as_mut() {
                match self.checkpoint(c, &learner, &event_store, &interrupter, epoch) {
                    Ok(read_back) => learner = read_back,
                    Err(e) => {
                        self.fail(e);
                        break;
                    }
                }
            }
            let state = RunState { completed_epochs: epoch, total_epochs: num_epochs, finished: false, stopped: None };
            if let Err(e) = self.run.write_state(&state) {
                self.fail(self.write_failed(e0, "saving the state", e));
                break;
            }
        }
        if let Some((epoch, why)) = stopped {
            self.stop(epoch, why);
        }
        (learner.model(), event_processor)
    }
}
