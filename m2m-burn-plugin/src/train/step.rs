//! burn-train's step traits for our classifier: plain cross-entropy, which is what the
//! stock burn-train strategies run. Our own loop (`strategy`) drives the same model with
//! the recipe's sampler and hooks.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};

use super::batch::ImageBatch;
use crate::model::{Classifier, Mode, Net};

impl<B: AutodiffBackend> TrainStep for Net<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: ImageBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let logits = self.logits(batch.images, Mode::Train);
        let loss = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), batch.targets.clone());
        let grads = loss.backward();
        TrainOutput::new(self, grads, ClassificationOutput::new(loss, logits, batch.targets))
    }
}

impl<B: Backend> InferenceStep for Net<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: ImageBatch<B>) -> ClassificationOutput<B> {
        let logits = self.logits(batch.images, Mode::Eval);
        let loss = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}
