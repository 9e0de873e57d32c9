//! One training and one validation epoch of burn-train's single-device loop, as burn-train
//! 0.21 runs them (`learner/supervised/strategies/single/epoch.rs`, which it does not
//! export): the same steps, learning-rate updates, gradient accumulation and events.

use burn::data::dataloader::Progress;
use burn::module::AutodiffModule;
use burn::optim::GradientsAccumulator;
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent, LearningComponentsTypes,
    SupervisedTrainingEventProcessor, TrainLoader, TrainingItem, ValidLoader,
};

/// Trains `learner` on one pass over `loader`, reporting each step to `events`; stops
/// early when `interrupter` says so.
pub(super) fn train_epoch<LC: LearningComponentsTypes>(
    learner: &mut Learner<LC>,
    loader: &TrainLoader<LC>,
    accumulation: Option<usize>,
    global: &Progress,
    events: &mut SupervisedTrainingEventProcessor<LC>,
    interrupter: &Interrupter,
) {
    let epoch = global.items_processed;
    let mut iterator = loader.iter();
    let (mut iteration, mut accumulated) = (0, 0);
    let mut accumulator = GradientsAccumulator::new();
    while let Some(item) = iterator.next() {
        iteration += 1;
        learner.lr_step();
        let progress = iterator.progress();
        let output = learner.train_step(item);
        match accumulation {
            Some(every) => {
                accumulator.accumulate(&learner.model(), output.grads);
                accumulated += 1;
                if accumulated >= every {
                    learner.optimizer_step(accumulator.grads());
                    accumulated = 0;
                }
            }
            None => learner.optimizer_step(output.grads),
        }
        let item =
            TrainingItem::new(output.item, progress, global.clone(), Some(iteration), Some(learner.lr_current()));
        events.process_train(LearnerEvent::ProcessedItem(item));
        if interrupter.should_stop() {
            break;
        }
    }
    events.process_train(LearnerEvent::EndEpoch(epoch));
}

/// Runs the model of `learner` in inference mode over `loader`, reporting each step.
pub(super) fn valid_epoch<LC: LearningComponentsTypes>(
    learner: &Learner<LC>,
    loader: &ValidLoader<LC>,
    global: &Progress,
    events: &mut SupervisedTrainingEventProcessor<LC>,
    interrupter: &Interrupter,
) {
    let model = learner.model().valid();
    let mut iterator = loader.iter();
    let mut iteration = 0;
    while let Some(item) = iterator.next() {
        iteration += 1;
        let progress = iterator.progress();
        let item = TrainingItem::new(model.step(item), progress, global.clone(), Some(iteration), None);
        events.process_valid(LearnerEvent::ProcessedItem(item));
        if interrupter.should_stop() {
            break;
        }
    }
    events.process_valid(LearnerEvent::EndEpoch(global.items_processed));
}
