//! burn-train's single-device loop with checkpoints that are written before training goes
//! on and whose faults end the run with one clear line: [`fusion_safe`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::data::dataloader::Progress;
use burn::module::Module;
use burn::tensor::backend::DeviceOps;
use burn::train::{
    Learner, LearningComponentsTypes, LearningResult, SupervisedLearningStrategy, SupervisedTrainingEventProcessor,
    TrainLoader, TrainingComponents, TrainingStrategy, ValidLoader,
};

use super::epoch::{train_epoch, valid_epoch};
use crate::learning_checkpoint::{restore, save_and_wait, CheckpointFault, FaultCause};

/// burn-train's training loop on one device, for any model, optimiser and scheduler, with
/// or without the M2m hook, such that checkpoints work on fusion backends:
///
/// ```ignore
/// let training = SupervisedTraining::new(artifact_dir, dataloader_train, dataloader_valid)
///     .with_file_checkpointer(CompactRecorder::new())
///     .with_training_strategy(m2m_burn_plugin::hook::fusion_safe(artifact_dir));
/// ```
///
/// It runs the epochs as burn-train's default single-device strategy does (the same steps,
/// events, gradient accumulation, interrupter and early stopping). After each epoch's
/// checkpoint it waits until the files are written, by reading the epoch back through the
/// checkpointer: burn-train's `AsyncCheckpointer` threads serve requests in order, so the
/// answer comes after the write, and no tensor of the saved records is read while training
/// goes on. That read racing the training stream of a fusion backend (burn's `cuda`, `wgpu`
/// and `vulkan` features) is what crashes burn-train's own loop with "Should have handle
/// for tensor" (tracel-ai/burn#4347). The model trained on is the one in memory, not the
/// copy read back: the run is the same as with burn's loop, whatever the recorder's precision.
///
/// `artifact_dir` is the folder given to `SupervisedTraining::new` (checkpoints are in its
/// `checkpoint` folder). A checkpoint that cannot be written (a full disk, a quota, an I/O
/// error) or, when resuming with `SupervisedTraining::checkpoint(n)`, read, ends the run:
/// the renderer is closed, one line says which folder, what happened and which checkpoint
/// is the newest complete one, and `launch` unwinds with a [`CheckpointFault`] payload
/// (`std::panic::catch_unwind` and `downcast::<CheckpointFault>()` recover it; uncaught,
/// the program ends with that line and exit status 101, without panic text). Checkpoints
/// written before stay as they were, so the run resumes from them once the cause is fixed.
pub fn fusion_safe<LC: LearningComponentsTypes + 'static>(artifact_dir: impl AsRef<Path>) -> TrainingStrategy<LC> {
    let checkpoints = artifact_dir.as_ref().join("checkpoint");
    TrainingStrategy::Custom(Arc::new(FusionSafe::<LC> {
        checkpoints,
        fault: Mutex::new(None),
        _lc: Default::default(),
    }))
}

/// The strategy [`fusion_safe`] returns.
pub struct FusionSafe<LC> {
    checkpoints: PathBuf,
    /// Set by the loop when a checkpoint fails; read by `train` after the loop ends.
    fault: Mutex<Option<CheckpointFault>>,
    _lc: std::marker::PhantomData<fn() -> LC>,
}

/// burn-train's default `train` around our loop (it restores the checkpoint to resume
/// from, sends the start and end events and writes the summary).
struct Loop<'a, LC>(&'a FusionSafe<LC>);

impl<LC: LearningComponentsTypes> SupervisedLearningStrategy<LC> for Loop<'_, LC> {
    fn fit(
        &self,
        tc: TrainingComponents<LC>,
        learner: Learner<LC>,
        train: TrainLoader<LC>,
        valid: ValidLoader<LC>,
        starting_epoch: usize,
    ) -> (LC::TrainingModel, SupervisedTrainingEventProcessor<LC>) {
        self.0.run(tc, learner, train, valid, starting_epoch)
    }
}

impl<LC: LearningComponentsTypes> SupervisedLearningStrategy<LC> for FusionSafe<LC> {
    fn train(
        &self,
        learner: Learner<LC>,
        train: TrainLoader<LC>,
        valid: ValidLoader<LC>,
        tc: TrainingComponents<LC>,
    ) -> LearningResult<LC::InferenceModel> {
        // The checkpoint to resume from, read before burn-train's `expect` would panic on it.
        if let (Some(n), Some(checkpointer)) = (tc.checkpoint, tc.checkpointer.as_ref()) {
            if let Err(fault) = restore(checkpointer, &learner, n, &self.checkpoints) {
                drop(tc); // closes the renderer: the terminal is back before the line
                end_with(fault);
            }
        }
        let result = Loop(self).train(learner, train, valid, tc);
        if let Some(fault) = self.fault.lock().unwrap_or_else(|p| p.into_inner()).take() {
            drop(result);
            end_with(fault);
        }
        result
    }

    fn fit(
        &self,
        tc: TrainingComponents<LC>,
        learner: Learner<LC>,
        train: TrainLoader<LC>,
        valid: ValidLoader<LC>,
        starting_epoch: usize,
    ) -> (LC::TrainingModel, SupervisedTrainingEventProcessor<LC>) {
        self.run(tc, learner, train, valid, starting_epoch)
    }
}

impl<LC: LearningComponentsTypes> FusionSafe<LC> {
    /// The epochs from `starting_epoch` (burn-train counts from 1) to the last.
    fn run(
        &self,
        tc: TrainingComponents<LC>,
        mut learner: Learner<LC>,
        train: TrainLoader<LC>,
        valid: ValidLoader<LC>,
        starting_epoch: usize,
    ) -> (LC::TrainingModel, SupervisedTrainingEventProcessor<LC>) {
        let device = learner.model().devices()[0].clone();
        let (train, valid) = (train.to_device(&device), valid.to_device(device.inner()));
        learner.fork(&device);
        let TrainingComponents {
            num_epochs,
            mut checkpointer,
            grad_accumulation: accumulation,
            interrupter,
            mut early_stopping,
            mut event_processor,
            event_store,
            ..
        } = tc;
        for epoch in starting_epoch..=num_epochs {
            let global = Progress::new(epoch, num_epochs);
            train_epoch(&mut learner, &train, accumulation, &global, &mut event_processor, &interrupter);
            if interrupter.should_stop() {
                tracing::info!("training interrupted: {}", interrupter.get_message().unwrap_or_default());
                break;
            }
            valid_epoch(&learner, &valid, &global, &mut event_processor, &interrupter);
            if let Some(c) = checkpointer.as_mut() {
                if let Err(fault) = save_and_wait(c, &learner, epoch, &event_store, &interrupter, &self.checkpoints) {
                    *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault);
                    break;
                }
            }
            if early_stopping.as_mut().is_some_and(|s| s.should_stop(epoch, &event_store)) {
                break;
            }
        }
        (learner.model(), event_processor)
    }
}

/// Prints the fault's line and unwinds with it as the payload (no panic hook runs).
fn end_with(fault: CheckpointFault) -> ! {
    let fix = match fault.cause {
        FaultCause::NoSpace { .. } => "free some space",
        FaultCause::Write(_) | FaultCause::Read(_) => "fix the cause",
    };
    eprintln!(
        "error: {fault}; the checkpoints written before are kept: {fix}, then resume from the newest complete one \
         (SupervisedTraining::checkpoint(n))"
    );
    std::panic::resume_unwind(Box::new(fault))
}
