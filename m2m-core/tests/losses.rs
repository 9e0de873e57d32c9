//! Golden values for every loss of the suite, computed by hand (an independent f64
//! evaluation of the formulas in algorithm.md §8.2) for two samples and three classes.

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use m2m_core::loss::{weight_tensor, ClassLoss, LossKind, WeightedMean};
use m2m_core::translation::int_tensor;

type B = Flex;

fn logits(rows: [[f32; 3]; 2]) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(rows.concat(), [2, 3]), &Default::default())
}

/// Targets [1, 0]; class weights [2, 0.5, 1]; training counts [100, 10, 1].
fn loss(kind: LossKind, mean: WeightedMean, rows: [[f32; 3]; 2], weighted: bool) -> f64 {
    let device = Default::default();
    let l = ClassLoss::<B>::new(kind, mean, &[100, 10, 1], &device);
    let w = weight_tensor::<B>(&[2.0, 0.5, 1.0], &device);
    let out = l.forward(logits(rows), int_tensor(&[1, 0], &device), weighted.then_some(&w));
    out.into_scalar() as f64
}

const Z: [[f32; 3]; 2] = [[1.0, 2.0, 0.0], [0.5, 0.0, -0.5]];
const COS: [[f32; 3]; 2] = [[0.2, 0.5, -0.1], [0.3, 0.1, -0.2]];

fn close(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-5, "got {got}, want {want}");
}

#[test]
fn cross_entropy_plain_and_with_both_weighted_means() {
    use LossKind::CrossEntropy as Ce;
    close(loss(Ce, WeightedMean::WeightSum, Z, false), 0.5439378175430576);
    close(loss(Ce, WeightedMean::BatchSize, Z, false), 0.5439378175430576);
    // (0.5 ℓ0 + 2 ℓ1) / (0.5 + 2) and / 2.
    close(loss(Ce, WeightedMean::WeightSum, Z, true), 0.6257369294022638);
    close(loss(Ce, WeightedMean::BatchSize, Z, true), 0.7821711617528297);
}

#[test]
fn focal_follows_the_ldam_drw_definition() {
    close(loss(LossKind::Focal { gamma: 1.0 }, WeightedMean::WeightSum, Z, false), 0.23608810245484538);
    // With weights, p = exp(-w ℓ) and the mean is over the batch whatever the convention.
    close(loss(LossKind::Focal { gamma: 2.0 }, WeightedMean::WeightSum, Z, true), 0.37948928383010294);
    close(loss(LossKind::Focal { gamma: 2.0 }, WeightedMean::BatchSize, Z, true), 0.37948928383010294);
    // γ = 0 is cross-entropy (batch mean).
    close(loss(LossKind::Focal { gamma: 0.0 }, WeightedMean::WeightSum, Z, false), 0.5439378175430576);
}

#[test]
fn ldam_subtracts_the_target_margin_then_scales() {
    // margins for counts [100, 10, 1] with max 0.5: [0.1581, 0.2812, 0.5]; scale 10.
    let kind = LossKind::Ldam { max_margin: 0.5, scale: 10.0 };
    close(loss(kind, WeightedMean::BatchSize, COS, false), 0.5753915010866385);
    close(loss(kind, WeightedMean::WeightSum, COS, true), 0.5451872560929188);
}

#[test]
fn logit_adjustment_adds_tau_log_prior() {
    close(loss(LossKind::LogitAdjusted { tau: 1.0 }, WeightedMean::BatchSize, Z, false), 0.8041380314689233);
    close(loss(LossKind::LogitAdjusted { tau: 0.5 }, WeightedMean::BatchSize, Z, false), 0.4985542616123793);
}
