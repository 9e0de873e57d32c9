//! Imbalance arithmetic shared by the data construction, the samplers and M2m.
//!
//! Conventions follow the reference code (algorithm.md §5.1, §4.1): class 0 is the largest
//! class, counts are truncated towards zero, and `ratio` is `N_max / N_min`.

use serde::{Deserialize, Serialize};

/// How per-class training counts fall from the head to the tail.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ImbalanceProfile {
    /// No imbalance: every class keeps `n_max` samples.
    Balanced,
    /// `N_k = floor(N_max * (1/ratio)^(k/(C-1)))` (M2m and LDAM-DRW "long-tailed").
    Exponential,
    /// `N_k = N_max` for `k < minority_start`, else `floor(N_max / ratio)`.
    Step {
        /// Index of the first minority class; classes from it on have `N_max / ratio` samples.
        minority_start: usize,
    },
}

/// Per-class counts of a long-tailed subset of a set with `n_max` samples per class.
///
/// Computed in f64 and truncated: this pins the CIFAR-10 ρ=100 total of 12406 and the
/// CIFAR-100 ρ=100 total of 10847 (algorithm.md §5.1).
pub fn class_counts(n_max: usize, num_classes: usize, ratio: f64, profile: ImbalanceProfile) -> Vec<usize> {
    assert!(num_classes >= 1, "num_classes must be >= 1");
    assert!(ratio >= 1.0, "ratio must be >= 1");
    (0..num_classes)
        .map(|k| match profile {
            ImbalanceProfile::Balanced => n_max,
            ImbalanceProfile::Exponential => {
                if num_classes == 1 {
                    n_max
                } else {
                    let exponent = k as f64 / (num_classes - 1) as f64;
                    (n_max as f64 * (1.0 / ratio).powf(exponent)).floor() as usize
                }
            }
            ImbalanceProfile::Step { minority_start } => {
                if k < minority_start {
                    n_max
                } else {
                    (n_max as f64 / ratio).floor() as usize
                }
            }
        })
        .collect()
}

/// Probability that M2m regenerates a balanced-batch slot of class `k`:
/// `1 - N_k / N_max` (algorithm.md §4.1). The largest class is never regenerated.
pub fn generation_probability(counts: &[usize], k: usize) -> f64 {
    let n_max = counts.iter().copied().max().unwrap_or(0);
    if n_max == 0 {
        return 0.0;
    }
    1.0 - counts[k] as f64 / n_max as f64
}

/// Seed weight and acceptance probability of translating a seed of class `k0` into
/// class `k`: `1 - beta^max(N_k0 - N_k, 0)` (algorithm.md §4.2).
pub fn acceptance_probability(counts: &[usize], beta: f64, k0: usize, k: usize) -> f64 {
    let gap = counts[k0].saturating_sub(counts[k]);
    1.0 - beta.powf(gap as f64)
}

/// Expected number of regenerated slots in a batch drawn from the class-balanced
/// sampler: `B * mean_k (1 - N_k/N_max)` over the classes that have samples.
pub fn expected_generated_slots(counts: &[usize], batch_size: usize) -> f64 {
    let present: Vec<usize> = (0..counts.len()).filter(|&k| counts[k] > 0).collect();
    if present.is_empty() {
        return 0.0;
    }
    let mean: f64 = present.iter().map(|&k| generation_probability(counts, k)).sum::<f64>() / present.len() as f64;
    batch_size as f64 * mean
}

/// `ln π_k` of the training class prior `π_k = N_k / Σ N`, as logit adjustment uses it
/// (in the loss and post hoc). An empty class counts as one sample, so its log prior is
/// very low rather than -inf (it never is a target).
pub fn log_prior(counts: &[usize]) -> Vec<f64> {
    let total = counts.iter().sum::<usize>().max(1) as f64;
    counts.iter().map(|&n| (n.max(1) as f64 / total).ln()).collect()
}

/// Imbalance factor `max_k N_k / min_k N_k` of a count vector (classes with 0 samples ignored).
pub fn imbalance_factor(counts: &[usize]) -> f64 {
    let max = counts.iter().copied().max().unwrap_or(0);
    let min = counts.iter().copied().filter(|&n| n > 0).min().unwrap_or(0);
    if min == 0 {
        return f64::INFINITY;
    }
    max as f64 / min as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cifar10_rho100_counts_and_total() {
        let c = class_counts(5000, 10, 100.0, ImbalanceProfile::Exponential);
        assert_eq!(c, vec![5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]);
        assert_eq!(c.iter().sum::<usize>(), 12406);
    }

    #[test]
    fn cifar100_rho100_total() {
        let c = class_counts(500, 100, 100.0, ImbalanceProfile::Exponential);
        assert_eq!(&c[..5], &[500, 477, 455, 434, 415]);
        assert_eq!(&c[95..], &[6, 5, 5, 5, 5]);
        assert_eq!(c.iter().sum::<usize>(), 10847);
    }

    #[test]
    fn cifar10_other_ratios() {
        let c10 = class_counts(5000, 10, 10.0, ImbalanceProfile::Exponential);
        assert_eq!(c10, vec![5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]);
        let c50 = class_counts(5000, 10, 50.0, ImbalanceProfile::Exponential);
        assert_eq!(c50.iter().sum::<usize>(), 13996);
    }

    #[test]
    fn step_profile() {
        let c = class_counts(5000, 10, 100.0, ImbalanceProfile::Step { minority_start: 5 });
        assert_eq!(c, vec![5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]);
    }

    #[test]
    fn acceptance_matches_spec_table() {
        let c = class_counts(5000, 10, 100.0, ImbalanceProfile::Exponential);
        let p = |k0, k| acceptance_probability(&c, 0.999, k0, k);
        // Spec §1.4 table, printed there to 3 decimals (its 8->9 entry rounds 0.0325 up).
        assert!((p(0, 9) - 0.993).abs() < 1e-3);
        assert!((p(1, 9) - 0.948).abs() < 1e-3);
        assert!((p(3, 4) - 0.351).abs() < 1e-3);
        assert!((p(7, 9) - 0.085).abs() < 1e-3);
        assert!((p(8, 9) - 0.033).abs() < 1e-3);
        // Exact: N_8 - N_9 = 83 - 50 = 33.
        assert_eq!(p(8, 9), 1.0 - 0.999f64.powf(33.0));
        // Smaller or equal seed classes never seed.
        assert_eq!(p(9, 0), 0.0);
        assert_eq!(p(4, 4), 0.0);
    }

    #[test]
    fn generation_probability_and_expected_slots() {
        let c = vec![100, 50, 10];
        assert_eq!(generation_probability(&c, 0), 0.0);
        assert!((generation_probability(&c, 1) - 0.5).abs() < 1e-12);
        assert!((generation_probability(&c, 2) - 0.9).abs() < 1e-12);
        // mean(0, 0.5, 0.9) = 1.4/3 per slot
        assert!((expected_generated_slots(&c, 30) - 14.0).abs() < 1e-9);
        // CIFAR-10 rho 100 covers about 75% of a balanced batch (algorithm.md §4.1).
        let cifar = class_counts(5000, 10, 100.0, ImbalanceProfile::Exponential);
        let frac = expected_generated_slots(&cifar, 1000) / 1000.0;
        assert!((frac - (1.0 - 12406.0 / 50000.0)).abs() < 1e-12, "{frac}");
    }

    #[test]
    fn log_prior_of_counts() {
        let lp = log_prior(&[3, 1, 0]);
        assert!((lp[0] - (3.0f64 / 4.0).ln()).abs() < 1e-12 && (lp[1] - (0.25f64).ln()).abs() < 1e-12);
        assert_eq!(lp[2], lp[1], "an empty class counts as one sample");
    }

    #[test]
    fn imbalance_factor_ignores_empty_classes() {
        assert_eq!(imbalance_factor(&[100, 10, 0]), 10.0);
    }
}
