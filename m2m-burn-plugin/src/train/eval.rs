//! Evaluation of a classifier on a fixed split: loss, confusion matrix, report.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use m2m_core::metrics::{ClassGroups, ClassificationReport, ConfusionMatrix};

use super::batch::{EvalLoader, ImageBatch};
use crate::model::{Classifier, Mode};

/// Accumulates predictions batch by batch. Losses and predictions stay on the device
/// until [`report`](Self::report): two reads per evaluation instead of two per batch
/// (each read waits for the device, which on CUDA stalls the queue of kernels).
pub struct Evaluation<B: Backend> {
    /// Per batch: sum of the cross-entropy over its images, and the predictions.
    pending: Vec<(Tensor<B, 1>, Tensor<B, 1, Int>)>,
    labels: Vec<usize>,
    num_classes: usize,
    /// Added to every row of logits before predicting (post-hoc logit adjustment).
    offsets: Option<Vec<f32>>,
}

/// Post-hoc logit adjustment (Menon et al., ICLR 2021): predict `argmax_k z_k - τ log π_k`
/// with π the training class prior. `None` for τ = 0.
pub fn logit_adjustment(tau: f64, counts: &[usize]) -> Option<Vec<f32>> {
    (tau > 0.0).then(|| m2m_core::imbalance::log_prior(counts).iter().map(|lp| (-tau * lp) as f32).collect())
}

impl<B: Backend> Evaluation<B> {
    pub fn new(num_classes: usize) -> Self {
        Self { pending: Vec::new(), labels: Vec::new(), num_classes, offsets: None }
    }

    /// Predictions on logits shifted by `offsets` (see [`logit_adjustment`]).
    pub fn adjusted(num_classes: usize, offsets: Option<Vec<f32>>) -> Self {
        Self { offsets, ..Self::new(num_classes) }
    }

    /// Adds a batch's logits; returns the batch's mean cross-entropy (shape `[1]`) of
    /// the (adjusted) logits.
    pub fn add(&mut self, logits: Tensor<B, 2>, batch: &ImageBatch<B>) -> Tensor<B, 1> {
        let n = batch.labels.len();
        let logits = match &self.offsets {
            Some(o) => {
                let shift = Tensor::<B, 1>::from_data(TensorData::new(o.clone(), [o.len()]), &logits.device());
                logits.add(shift.reshape([1, o.len()]))
            }
            None => logits,
        };
        let ce = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), batch.targets.clone());
        self.pending.push((ce.clone().mul_scalar(n as f64), logits.argmax(1).reshape([n])));
        self.labels.extend_from_slice(&batch.labels);
        ce
    }

    /// Reads the predictions and losses back (once) and reports them.
    pub fn report(&self, groups: &ClassGroups) -> ClassificationReport {
        let mut confusion = ConfusionMatrix::new(self.num_classes);
        let mut loss_sum = 0.0;
        if !self.pending.is_empty() {
            let (losses, preds): (Vec<_>, Vec<_>) = self.pending.iter().cloned().unzip();
            loss_sum = Tensor::cat(losses, 0).sum().into_scalar().elem::<f64>();
            let preds: Vec<i64> =
                Tensor::cat(preds, 0).into_data().convert::<i64>().to_vec().expect("argmax gives integers");
            for (&t, &p) in self.labels.iter().zip(&preds) {
                confusion.add(t, p as usize);
            }
        }
        let n = confusion.total().max(1) as f64;
        ClassificationReport::from_confusion(&confusion, groups, Some(loss_sum / n))
    }
}

/// Evaluates `model` (running statistics) on every batch of `loader`, with predictions
/// shifted by `offsets` when given.
pub fn evaluate<B: Backend, M: Classifier<B>>(
    model: &M,
    loader: &EvalLoader<B>,
    groups: &ClassGroups,
    offsets: Option<Vec<f32>>,
) -> ClassificationReport {
    let mut ev = Evaluation::adjusted(groups.train_counts.len(), offsets);
    for batch in loader.batches() {
        let logits = model.logits(batch.images.clone(), Mode::Eval);
        ev.add(logits, &batch);
    }
    ev.report(groups)
}
