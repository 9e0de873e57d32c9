//! Classification metrics for imbalanced problems, computed from a confusion matrix.
//!
//! Balanced accuracy is the mean per-class recall; on a class-balanced test set it equals
//! plain accuracy, which is what the M2m code reports (algorithm.md §7.1).

use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfusionMatrix {
    num_classes: usize,
    /// Row-major: `counts[truth * C + prediction]`.
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for classes `0..num_classes`.
    pub fn new(num_classes: usize) -> Self {
        Self { num_classes, counts: vec![0; num_classes * num_classes] }
    }

    /// Number of classes C (the matrix is C × C).
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Adds one observation. Panics on an out-of-range class, which is a programming error.
    pub fn add(&mut self, truth: usize, prediction: usize) {
        assert!(truth < self.num_classes && prediction < self.num_classes);
        self.counts[truth * self.num_classes + prediction] += 1;
    }

    /// Adds one observation per pair of `truths` and `predictions`. Panics when their
    /// lengths differ or a class is out of range.
    pub fn add_all(&mut self, truths: &[usize], predictions: &[usize]) {
        assert_eq!(truths.len(), predictions.len());
        for (&t, &p) in truths.iter().zip(predictions) {
            self.add(t, p);
        }
    }

    /// Adds the counts of `other` (for instance another batch's). Panics when the numbers
    /// of classes differ.
    pub fn merge(&mut self, other: &ConfusionMatrix) {
        assert_eq!(self.num_classes, other.num_classes);
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of observations of true class `truth` predicted as `prediction`.
    pub fn get(&self, truth: usize, prediction: usize) -> u64 {
        self.counts[truth * self.num_classes + prediction]
    }

    /// Number of observations whose true class is `k`.
    pub fn support(&self, k: usize) -> u64 {
        self.counts[k * self.num_classes..(k + 1) * self.num_classes].iter().sum()
    }

    /// Number of observations.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Per-class recall; `None` for a class with no observations.
    pub fn recalls(&self) -> Vec<Option<f64>> {
        (0..self.num_classes)
            .map(|k| {
                let s = self.support(k);
                (s > 0).then(|| self.get(k, k) as f64 / s as f64)
            })
            .collect()
    }

    /// Plain accuracy over all observations.
    pub fn accuracy(&self) -> f64 {
        let total = self.total();
        if total == 0 {
            return 0.0;
        }
        let correct: u64 = (0..self.num_classes).map(|k| self.get(k, k)).sum();
        correct as f64 / total as f64
    }
}

/// Which classes form the M2m paper's major/neutral/minor thirds and the
/// many/medium/few-shot groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassGroups {
    /// Training count per class, used for the shot groups.
    pub train_counts: Vec<usize>,
    /// A class is many-shot when its training count is above this (default 100).
    pub many_above: usize,
    /// A class is few-shot when its training count is below this (default 20).
    pub few_below: usize,
}

impl ClassGroups {
    /// Groups for these per-class training counts, with the usual shot thresholds:
    /// many-shot above 100 samples, few-shot below 20.
    pub fn new(train_counts: Vec<usize>) -> Self {
        Self { train_counts, many_above: 100, few_below: 20 }
    }

    /// M2m's split into thirds by class size: the `C/3` largest classes are major, the
    /// `C/3` smallest minor, the rest neutral; equal counts rank by class index. On the
    /// generated long tails (class 0 largest) this is M2m's split by index; it also holds
    /// for data kept with its own counts, where the largest class may have any index.
    pub fn third_of(&self, k: usize) -> Third {
        let c = self.train_counts.len();
        let n = self.train_counts[k];
        let rank = self.train_counts.iter().enumerate().filter(|&(j, &m)| m > n || (m == n && j < k)).count();
        if rank < c / 3 {
            Third::Major
        } else if rank >= c - c / 3 {
            Third::Minor
        } else {
            Third::Neutral
        }
    }

    /// The shot group of class `k`: many above `many_above` training samples, few below
    /// `few_below`, medium otherwise.
    pub fn shot_of(&self, k: usize) -> Shot {
        let n = self.train_counts[k];
        if n > self.many_above {
            Shot::Many
        } else if n < self.few_below {
            Shot::Few
        } else {
            Shot::Medium
        }
    }
}

/// M2m's split of the classes into thirds by training count (see [`ClassGroups::third_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Third {
    /// The largest third of the classes.
    Major,
    /// The classes in neither the largest nor the smallest third.
    Neutral,
    /// The smallest third of the classes.
    Minor,
}

/// The many/medium/few-shot grouping of a class by its training count (see
/// [`ClassGroups::shot_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shot {
    /// More than `many_above` training samples.
    Many,
    /// Between `few_below` and `many_above` training samples, both included.
    Medium,
    /// Fewer than `few_below` training samples.
    Few,
}

/// Everything reported for one evaluation of a classifier on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// Number of samples evaluated.
    pub num_samples: u64,
    /// Mean loss per sample, when the caller measured one.
    pub loss: Option<f64>,
    /// Fraction of samples classified correctly, in [0, 1] (0 for an empty split).
    pub accuracy: f64,
    /// Mean of the per-class recalls over classes present in the split.
    pub balanced_accuracy: f64,
    /// Geometric mean of the per-class recalls; 0 when any class has recall 0.
    pub geometric_mean: f64,
    /// Recall of each class, by class index; `None` for a class absent from the split.
    pub per_class_recall: Vec<Option<f64>>,
    /// Mean recall of the major third of the classes present; `None` when none is.
    pub major: Option<f64>,
    /// Mean recall of the neutral third of the classes present; `None` when none is.
    pub neutral: Option<f64>,
    /// Mean recall of the minor third of the classes present; `None` when none is.
    pub minor: Option<f64>,
    /// Mean recall of the many-shot classes present; `None` when none is.
    pub many_shot: Option<f64>,
    /// Mean recall of the medium-shot classes present; `None` when none is.
    pub medium_shot: Option<f64>,
    /// Mean recall of the few-shot classes present; `None` when none is.
    pub few_shot: Option<f64>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl ClassificationReport {
    /// The report of a confusion matrix, with `groups` for the thirds and shot groups
    /// and the mean `loss` if one was measured. Panics when `cm` and `groups` disagree on
    /// the number of classes.
    pub fn from_confusion(cm: &ConfusionMatrix, groups: &ClassGroups, loss: Option<f64>) -> Self {
        assert_eq!(cm.num_classes(), groups.train_counts.len());
        let recalls = cm.recalls();
        let present = || recalls.iter().enumerate().filter_map(|(k, r)| r.map(|r| (k, r)));
        let balanced_accuracy = mean(present().map(|(_, r)| r)).unwrap_or(0.0);
        let n_present = present().count();
        let geometric_mean = if n_present == 0 || present().any(|(_, r)| r == 0.0) {
            0.0
        } else {
            (present().map(|(_, r)| r.ln()).sum::<f64>() / n_present as f64).exp()
        };
        let third = |t: Third| mean(present().filter(|&(k, _)| groups.third_of(k) == t).map(|(_, r)| r));
        let shot = |s: Shot| mean(present().filter(|&(k, _)| groups.shot_of(k) == s).map(|(_, r)| r));
        Self {
            num_samples: cm.total(),
            loss,
            accuracy: cm.accuracy(),
            balanced_accuracy,
            geometric_mean,
            per_class_recall: recalls.clone(),
            major: third(Third::Major),
            neutral: third(Third::Neutral),
            minor: third(Third::Minor),
            many_shot: shot(Shot::Many),
            medium_shot: shot(Shot::Medium),
            few_shot: shot(Shot::Few),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_computed_three_class_case() {
        // truth 0: 8 samples, 6 right; truth 1: 4 samples, 2 right; truth 2: 2 samples, 1 right.
        let mut cm = ConfusionMatrix::new(3);
        let truths = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2];
        let preds = [0, 0, 0, 0, 0, 0, 1, 2, 1, 1, 0, 0, 2, 0];
        cm.add_all(&truths, &preds);
        assert_eq!(cm.total(), 14);
        assert!(close(cm.accuracy(), 9.0 / 14.0));
        let groups = ClassGroups { train_counts: vec![500, 50, 5], many_above: 100, few_below: 20 };
        let r = ClassificationReport::from_confusion(&cm, &groups, Some(0.25));
        assert!(close(r.balanced_accuracy, (0.75 + 0.5 + 0.5) / 3.0));
        assert!(close(r.geometric_mean, (0.75f64 * 0.5 * 0.5).powf(1.0 / 3.0)));
        // C = 3: major = {0}, neutral = {1}, minor = {2}.
        assert_eq!(r.major, Some(0.75));
        assert_eq!(r.neutral, Some(0.5));
        assert_eq!(r.minor, Some(0.5));
        assert_eq!(r.many_shot, Some(0.75));
        assert_eq!(r.medium_shot, Some(0.5));
        assert_eq!(r.few_shot, Some(0.5));
        assert_eq!(r.loss, Some(0.25));
    }

    #[test]
    fn thirds_for_ten_and_hundred_classes() {
        let g10 = ClassGroups::new(vec![1; 10]);
        let thirds: Vec<Third> = (0..10).map(|k| g10.third_of(k)).collect();
        assert_eq!(&thirds[..3], &[Third::Major; 3]);
        assert_eq!(&thirds[3..7], &[Third::Neutral; 4]);
        assert_eq!(&thirds[7..], &[Third::Minor; 3]);
        let g100 = ClassGroups::new(vec![1; 100]);
        assert_eq!(g100.third_of(32), Third::Major);
        assert_eq!(g100.third_of(33), Third::Neutral);
        assert_eq!(g100.third_of(66), Third::Neutral);
        assert_eq!(g100.third_of(67), Third::Minor);
        // The long tails cut by the profiles (class 0 largest): the split by index.
        let lt = ClassGroups::new(crate::imbalance::class_counts(
            5000,
            10,
            100.0,
            crate::imbalance::ImbalanceProfile::Exponential,
        ));
        assert_eq!((0..10).map(|k| lt.third_of(k)).collect::<Vec<_>>(), thirds);
        // Data with its own counts: by size, whatever the index.
        let own = ClassGroups::new(vec![10, 500, 40, 90, 3, 200]);
        let by_size: Vec<Third> = (0..6).map(|k| own.third_of(k)).collect();
        use Third::*;
        assert_eq!(by_size, vec![Minor, Major, Neutral, Neutral, Minor, Major]);
    }

    #[test]
    fn zero_recall_makes_gm_zero_and_empty_groups_are_none() {
        let mut cm = ConfusionMatrix::new(2);
        cm.add_all(&[0, 0, 1], &[0, 0, 0]);
        let r = ClassificationReport::from_confusion(&cm, &ClassGroups::new(vec![1000, 500]), None);
        assert_eq!(r.geometric_mean, 0.0);
        assert!(close(r.balanced_accuracy, 0.5));
        assert_eq!(r.few_shot, None);
        assert_eq!(r.medium_shot, None);
    }

    #[test]
    fn classes_absent_from_split_are_skipped() {
        let mut cm = ConfusionMatrix::new(3);
        cm.add_all(&[0, 1], &[0, 0]);
        let r = ClassificationReport::from_confusion(&cm, &ClassGroups::new(vec![9, 9, 9]), None);
        assert_eq!(r.per_class_recall, vec![Some(1.0), Some(0.0), None]);
        assert!(close(r.balanced_accuracy, 0.5));
    }
}
