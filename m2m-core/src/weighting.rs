//! Per-class loss weights: one concept shared by RW, CB-RW, DRW and LDAM-DRW (algorithm.md §8.2,
//! §4.4), and the "from epoch E" switch that defers weights, samplers and M2m alike.

use serde::{Deserialize, Serialize};

/// How per-class loss weights follow the training counts. Weights are normalised so that
/// they sum to the number of classes (as both reference repositories do).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ClassWeighting {
    /// Every class weighs 1 (plain ERM).
    Uniform,
    /// `w_k ∝ 1 / N_k` (RW; the M2m repo's `--eff_beta 1.0`).
    InverseFrequency,
    /// Class-balanced weights from the effective number `E_k = (1 - β^N_k) / (1 - β)`:
    /// `w_k ∝ 1 / E_k` (Cui et al. 2019; CB-RW, DRW, LDAM-DRW).
    EffectiveNumber {
        /// β in (0, 1); 0.9999 in LDAM-DRW. β >= 1 gives inverse frequency, β <= 0 uniform weights.
        beta: f64,
    },
}

impl ClassWeighting {
    /// The weight of each class for these training counts. A class without samples gets
    /// weight 0 (it never occurs as a target); the others sum to the number of classes.
    pub fn weights(&self, counts: &[usize]) -> Vec<f64> {
        let raw: Vec<f64> = counts
            .iter()
            .map(|&n| match (*self, n) {
                (_, 0) => 0.0,
                (ClassWeighting::Uniform, _) => 1.0,
                (ClassWeighting::InverseFrequency, n) => 1.0 / n as f64,
                (ClassWeighting::EffectiveNumber { beta }, n) if beta >= 1.0 => 1.0 / n as f64,
                (ClassWeighting::EffectiveNumber { beta }, _) if beta <= 0.0 => 1.0,
                (ClassWeighting::EffectiveNumber { beta }, n) => inverse_effective_number(beta, n),
            })
            .collect();
        let sum: f64 = raw.iter().sum();
        let num_classes = counts.len() as f64;
        raw.iter().map(|w| if sum > 0.0 { w / sum * num_classes } else { 0.0 }).collect()
    }
}

/// `1 / E_n = (1 - β) / (1 - β^n)` for β in (0, 1); `1 - β^n` goes through `exp_m1`
/// so that β close to 1 keeps its precision.
fn inverse_effective_number(beta: f64, n: usize) -> f64 {
    (1.0 - beta) / -(n as f64 * beta.ln()).exp_m1()
}

/// A setting that applies from a 0-based epoch on; before it, the method's neutral
/// setting applies (natural sampler, unit weights, no generator). The deferred schedule
/// of DRS, DRW, LDAM-DRW and M2m is this switch with `from_epoch` at the first LR drop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Deferred<T> {
    /// The setting in force from `from_epoch` on.
    pub value: T,
    /// First 0-based epoch at which `value` applies.
    pub from_epoch: usize,
}

impl<T> Deferred<T> {
    /// `value` from 0-based epoch `from_epoch` on (0: from the start).
    pub fn new(value: T, from_epoch: usize) -> Self {
        Self { value, from_epoch }
    }

    /// The setting in force at `epoch`, or `None` before `from_epoch`.
    pub fn at(&self, epoch: usize) -> Option<&T> {
        (epoch >= self.from_epoch).then_some(&self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imbalance::{class_counts, ImbalanceProfile};

    fn cifar10_rho100() -> Vec<usize> {
        class_counts(5000, 10, 100.0, ImbalanceProfile::Exponential)
    }

    #[test]
    fn class_balanced_weights_match_the_spec_for_cifar10_rho100() {
        // algorithm.md §8.2: β = 0.9999.
        let w = ClassWeighting::EffectiveNumber { beta: 0.9999 }.weights(&cifar10_rho100());
        let expected = [0.051, 0.077, 0.121, 0.195, 0.319, 0.525, 0.868, 1.443, 2.409, 3.993];
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 5e-4, "{w:?}");
        }
        assert!((w.iter().sum::<f64>() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn inverse_frequency_is_the_beta_one_limit() {
        let counts = cifar10_rho100();
        let inv = ClassWeighting::InverseFrequency.weights(&counts);
        // Hand-computed: w_k = (1/N_k) / Σ_j (1/N_j) * 10.
        let s: f64 = counts.iter().map(|&n| 1.0 / n as f64).sum();
        for (w, &n) in inv.iter().zip(&counts) {
            assert!((w - 10.0 / n as f64 / s).abs() < 1e-12);
        }
        let near_one = ClassWeighting::EffectiveNumber { beta: 1.0 - 1e-12 }.weights(&counts);
        for (a, b) in inv.iter().zip(&near_one) {
            assert!((a - b).abs() < 1e-4, "{inv:?} vs {near_one:?}");
        }
        assert_eq!(ClassWeighting::EffectiveNumber { beta: 1.0 }.weights(&counts), inv);
    }

    #[test]
    fn uniform_and_beta_zero_give_unit_weights_and_empty_classes_weigh_nothing() {
        assert_eq!(ClassWeighting::Uniform.weights(&[5, 3, 1]), vec![1.0; 3]);
        assert_eq!(ClassWeighting::EffectiveNumber { beta: 0.0 }.weights(&[5, 3, 1]), vec![1.0; 3]);
        let w = ClassWeighting::InverseFrequency.weights(&[4, 0, 1]);
        assert_eq!(w[1], 0.0);
        assert!((w[0] - 3.0 * 0.25 / 1.25).abs() < 1e-12 && (w[2] - 3.0 / 1.25).abs() < 1e-12);
    }

    #[test]
    fn deferred_applies_from_its_epoch() {
        let d = Deferred::new(7, 3);
        assert_eq!(d.at(2), None);
        assert_eq!(d.at(3), Some(&7));
        assert_eq!(d.at(10), Some(&7));
    }
}
