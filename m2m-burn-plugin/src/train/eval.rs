//! Evaluation of a classifier on a fixed split: loss, confusion matrix, report.

use burn::tensor::backend::Backend;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{ElementConversion, Tensor};
use m2m_core::metrics::{ClassGroups, ClassificationReport, ConfusionMatrix};

use super::batch::{EvalLoader, ImageBatch};
use crate::model::{Classifier, Mode};

/// Accumulates predictions batch by batch.
pub struct Evaluation {
    pub confusion: ConfusionMatrix,
    loss_sum: f64,
}

impl Evaluation {
    pub fn new(num_classes: usize) -> Self {
        Self { confusion: ConfusionMatrix::new(num_classes), loss_sum: 0.0 }
    }

    /// Adds a batch's logits; returns the batch's mean cross-entropy (shape `[1]`).
    pub fn add<B: Backend>(&mut self, logits: Tensor<B, 2>, batch: &ImageBatch<B>) -> Tensor<B, 1> {
        let n = batch.labels.len();
        let ce = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), batch.targets.clone());
        self.loss_sum += ce.clone().into_scalar().elem::<f64>() * n as f64;
        let preds = logits.argmax(1).reshape([n]).into_data();
        let preds: Vec<i64> = preds.convert::<i64>().to_vec().expect("argmax gives integers");
        for (&t, &p) in batch.labels.iter().zip(&preds) {
            self.confusion.add(t, p as usize);
        }
        ce
    }

    pub fn report(&self, groups: &ClassGroups) -> ClassificationReport {
        let n = self.confusion.total().max(1) as f64;
        ClassificationReport::from_confusion(&self.confusion, groups, Some(self.loss_sum / n))
    }
}

/// Evaluates `model` (running statistics) on every batch of `loader`.
pub fn evaluate<B: Backend, M: Classifier<B>>(model: &M, loader: &EvalLoader<B>, groups: &ClassGroups) -> ClassificationReport {
    let mut ev = Evaluation::new(model.num_classes());
    for batch in loader.batches() {
        let logits = model.logits(batch.images.clone(), Mode::Eval);
        ev.add(logits, &batch);
    }
    ev.report(groups)
}
