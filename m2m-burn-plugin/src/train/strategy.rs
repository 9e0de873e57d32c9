//! The epoch loop: a burn-train `SupervisedLearningStrategy` that keeps burn's learner,
//! optimiser, scheduler, metrics dashboard and checkpointer, and adds what imbalanced
//! training needs: the sampler plan per epoch, evaluation on validation *and* test every
//! epoch, best-validation model selection, NaN detection and a resumable run directory.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    EventProcessorTraining, Learner, LearnerEvent, LearningComponentsMarker, SupervisedLearningStrategy,
    SupervisedTrainingEventProcessor, TrainingComponents,
};
use m2m_core::metrics::ClassGroups;

use super::batch::{EvalLoader, TrainLoader};
use super::scheduler::EpochScheduler;
use crate::learning_checkpoint::{free_bytes, human_size, save_and_wait, FaultCause};
use crate::m2m::{M2m, M2mSchedule};
use crate::model::{save_classifier, ModelSpec, Net};
use crate::recipe::LossPlan;
use crate::run_dir::{best_val, EpochRecord, RunDir, RunState};

pub type Optim<B> =
    burn::optim::adaptor::OptimizerAdaptor<burn::optim::Sgd<<B as AutodiffBackend>::InnerBackend>, Net<B>, B>;
pub type Components<B> = LearningComponentsMarker<B, EpochScheduler, Net<B>, Optim<B>>;
/// burn-train's event processor of our loop (dashboard or log lines, metrics).
pub(super) type Events<B> = SupervisedTrainingEventProcessor<Components<B>>;

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
    /// Stop after this many epochs, resumably (see `Prefixes::pause_after`).
    pub pause_after: Option<usize>,
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
    /// The epochs, each in steps (`epoch.rs`): train, evaluate, draw, record, checkpoint,
    /// then the state file. Any step that fails or is stopped ends the loop with the
    /// newest complete epoch as the resume point.
    fn fit(
        &self,
        tc: TrainingComponents<Components<B>>,
        mut learner: Learner<Components<B>>,
        _train: burn::train::TrainLoader<Components<B>>,
        _valid: burn::train::ValidLoader<Components<B>>,
        starting_epoch: usize,
    ) -> (Net<B>, Events<B>) {
        let TrainingComponents { num_epochs, mut checkpointer, interrupter, mut event_processor, event_store, .. } = tc;
        let mut records = self.previous.clone();
        // burn counts epochs from 1; a run started from a checkpoint skips the epochs before it.
        for epoch in starting_epoch.max(self.first_epoch + 1)..=num_epochs {
            let e0 = epoch - 1; // recipes count epochs from 0
            if self.pause_after.is_some_and(|p| e0 >= p) {
                // Resumed past the pause point: nothing to train in this launch.
                self.fail(anyhow::Error::new(crate::stop::Stopped::Rung(e0)));
                break;
            }
            let started = Instant::now();
            let trained = match self.train_epoch(&mut learner, (epoch, num_epochs), &mut event_processor, &interrupter)
            {
                Ok(trained) => trained,
                // A signal or a lost lock lease (crate::stop): the epoch in progress is
                // abandoned, the newest complete one stays the resume point.
                Err(why) => {
                    self.stop(epoch, why);
                    break;
                }
            };
            event_processor.process_train(LearnerEvent::EndEpoch(epoch));
            if interrupter.should_stop() {
                break;
            }
            let (train_loss, train_accuracy) = trained.totals.finish();
            if !train_loss.is_finite() {
                self.fail(anyhow::anyhow!(
                    "the training loss became {train_loss} in epoch {e0} (lr {:.3e}); stopped without saving this epoch. \
                     The checkpoints of the earlier epochs are kept: lower `optimizer.lr` or check the data",
                    trained.lr
                ));
                break;
            }
            let (val, test) = self.evaluate_epoch(&learner, (epoch, num_epochs), &mut event_processor);
            let gallery = self.draw_gallery(e0, &trained.shown);
            let record = EpochRecord {
                epoch: e0,
                lr: trained.lr,
                sampler: self.train.sampler_at(e0),
                class_weights: trained.class_weights,
                seconds: started.elapsed().as_secs_f64(),
                train_loss,
                train_accuracy,
                val,
                test,
                m2m: trained.m2m,
            };
            if let Some(why) = crate::stop::requested() {
                self.stop(epoch, why);
                break;
            }
            let saved = Saved { records: &mut records, gallery: gallery.as_deref(), epoch, num_epochs };
            match self.save_epoch(learner, saved, record, checkpointer.as_mut(), &event_store, &interrupter) {
                Ok(next) => learner = next,
                Err((last, e)) => {
                    learner = last;
                    self.fail(e);
                    break;
                }
            }
            if self.pause_after == Some(epoch) && epoch < num_epochs {
                self.fail(anyhow::Error::new(crate::stop::Stopped::Rung(epoch)));
                break;
            }
        }
        (learner.model(), event_processor)
    }
}

/// A failed save: the learner (training stops with it) and the line to print.
type SaveFailed<B> = (Learner<Components<B>>, anyhow::Error);

/// Where an epoch's record goes: the records so far (it is added to them), its gallery
/// picture, its (burn) epoch and the run's epoch count.
struct Saved<'a> {
    records: &'a mut Vec<EpochRecord>,
    gallery: Option<&'a [u8]>,
    epoch: usize,
    num_epochs: usize,
}

impl<B: AutodiffBackend> ImbalancedStrategy<B> {
    /// Saves an epoch: its record, best model and fork point, then burn-train's checkpoint
    /// (training goes on with the learner read back from it), then the state file last,
    /// so that it never points at an epoch whose files are missing. `Err` with the learner
    /// and the line to print when a write failed.
    fn save_epoch(
        &self,
        learner: Learner<Components<B>>,
        saved: Saved,
        record: EpochRecord,
        checkpointer: Option<&mut burn::train::LearningCheckpointer<Components<B>>>,
        store: &burn::train::metric::store::EventStoreClient,
        interrupter: &burn::train::Interrupter,
    ) -> Result<Learner<Components<B>>, SaveFailed<B>> {
        let Saved { records, gallery, epoch, num_epochs } = saved;
        let e0 = epoch - 1;
        if let Err(e) = self.record_epoch(&learner, records, record, gallery, epoch, num_epochs) {
            return Err((learner, self.write_failed(e0, "saving the results", e)));
        }
        let learner = match checkpointer {
            Some(c) => match self.checkpoint(c, &learner, store, interrupter, epoch) {
                Ok(read_back) => read_back,
                Err(e) => return Err((learner, e)),
            },
            None => learner,
        };
        let state = RunState { completed_epochs: epoch, total_epochs: num_epochs, finished: false, stopped: None };
        match self.run.write_state(&state) {
            Ok(()) => Ok(learner),
            Err(e) => Err((learner, self.write_failed(e0, "saving the state", e))),
        }
    }
}
