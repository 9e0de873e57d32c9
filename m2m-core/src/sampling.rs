//! Epoch samplers over a labelled training set: the natural shuffle and the
//! class-balanced over-sampler that DRS, RS and M2m switch to at their deferred epoch.

use rand::seq::SliceRandom;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::seed::{stream_rng, SeedStream};
use crate::weighting::Deferred;

/// Which order the training set is drawn in during one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SamplerKind {
    /// A fresh permutation of the training set (PyTorch's `SubsetRandomSampler`).
    Natural,
    /// `WeightedRandomSampler(1/N_y, num_samples = len, replacement = true)`: every draw
    /// picks a class uniformly among non-empty classes, then a sample of it uniformly.
    ClassBalanced,
    /// SMOTE (algorithm.md §8.3): every epoch draws `len()` samples without replacement from the
    /// original samples plus the synthetic ones (see [`crate::smote`]) that balance the
    /// classes. The same as `Natural` when no synthetic samples were added.
    Smote,
}

impl Deferred<SamplerKind> {
    /// The sampler of `epoch`: natural before the deferred epoch.
    pub fn kind_at(&self, epoch: usize) -> SamplerKind {
        self.at(epoch).copied().unwrap_or(SamplerKind::Natural)
    }
}

/// Indices of the training samples of each class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassIndex {
    by_class: Vec<Vec<usize>>,
    len: usize,
    /// Synthetic samples stored after the `len` original ones (indices `len..len+synthetic`).
    synthetic: usize,
}

impl ClassIndex {
    /// Indexes samples by class: `labels[i]` is the class of sample `i`. Panics on a
    /// label `>= num_classes`.
    pub fn new(labels: &[usize], num_classes: usize) -> Self {
        let mut by_class = vec![Vec::new(); num_classes];
        for (i, &y) in labels.iter().enumerate() {
            by_class[y].push(i);
        }
        Self { by_class, len: labels.len(), synthetic: 0 }
    }

    /// Declares `count` synthetic samples stored after the original ones; only the
    /// `Smote` sampler draws them.
    pub fn with_synthetic(mut self, count: usize) -> Self {
        self.synthetic = count;
        self
    }

    /// Number of original samples per class (synthetic ones not counted).
    pub fn counts(&self) -> Vec<usize> {
        self.by_class.iter().map(Vec::len).collect()
    }

    /// Number of original samples, which is also the number of draws per epoch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no original samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Indices of the original samples of class `k`, in ascending order.
    pub fn of_class(&self, k: usize) -> &[usize] {
        &self.by_class[k]
    }

    /// The sample order of one epoch: `len()` draws in every mode.
    pub fn epoch_order<R: Rng + ?Sized>(&self, kind: SamplerKind, rng: &mut R) -> Vec<usize> {
        match kind {
            SamplerKind::Natural => {
                let mut order: Vec<usize> = (0..self.len).collect();
                order.shuffle(rng);
                order
            }
            SamplerKind::ClassBalanced => {
                let classes: Vec<&Vec<usize>> = self.by_class.iter().filter(|c| !c.is_empty()).collect();
                (0..self.len)
                    .map(|_| {
                        let members = classes[rng.random_range(0..classes.len())];
                        members[rng.random_range(0..members.len())]
                    })
                    .collect()
            }
            SamplerKind::Smote => {
                let mut order: Vec<usize> = (0..self.len + self.synthetic).collect();
                order.shuffle(rng);
                order.truncate(self.len);
                order
            }
        }
    }
}

/// Splits an epoch order into batches of `batch_size`; the last batch may be smaller
/// (PyTorch's default `drop_last = False`).
pub fn into_batches(order: Vec<usize>, batch_size: usize) -> Vec<Vec<usize>> {
    assert!(batch_size > 0);
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// The batches (sample indices) of `epoch` (0-based) of a run seeded with `seed`: the
/// plan's sampler for that epoch, drawn from the run's [`SeedStream::Sampling`] stream.
/// The `m2m` CLI's loader and the burn-train hook both take their batches from here.
pub fn epoch_batches(
    index: &ClassIndex,
    plan: &Deferred<SamplerKind>,
    seed: u64,
    epoch: usize,
    batch_size: usize,
) -> Vec<Vec<usize>> {
    let order = index.epoch_order(plan.kind_at(epoch), &mut stream_rng(seed, epoch, SeedStream::Sampling));
    into_batches(order, batch_size)
}

/// Number of batches per epoch for `len` samples.
pub fn batches_per_epoch(len: usize, batch_size: usize) -> usize {
    len.div_ceil(batch_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::ChaCha12Rng;
    use rand::SeedableRng;

    #[test]
    fn natural_is_a_permutation() {
        let labels = vec![0, 0, 0, 1, 1, 2];
        let idx = ClassIndex::new(&labels, 3);
        let mut order = idx.epoch_order(SamplerKind::Natural, &mut ChaCha12Rng::seed_from_u64(1));
        order.sort();
        assert_eq!(order, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn balanced_draws_classes_uniformly() {
        // 900 / 90 / 9 samples: the balanced sampler must give each class about a third.
        let mut labels = vec![0; 900];
        labels.extend(vec![1; 90]);
        labels.extend(vec![2; 9]);
        let idx = ClassIndex::new(&labels, 4); // class 3 is empty and must never be drawn
        let mut rng = ChaCha12Rng::seed_from_u64(7);
        let mut per_class = [0usize; 4];
        for _ in 0..30 {
            for i in idx.epoch_order(SamplerKind::ClassBalanced, &mut rng) {
                per_class[labels[i]] += 1;
            }
        }
        let total = 30 * 999;
        assert_eq!(per_class[3], 0);
        for &c in &per_class[..3] {
            let frac = c as f64 / total as f64;
            assert!((frac - 1.0 / 3.0).abs() < 0.01, "{per_class:?}");
        }
    }

    #[test]
    fn smote_draws_an_epoch_of_originals_and_synthetics_without_replacement() {
        let labels = vec![0, 0, 0, 0, 1];
        let idx = ClassIndex::new(&labels, 2).with_synthetic(3);
        let mut rng = ChaCha12Rng::seed_from_u64(2);
        let mut seen = [0usize; 8];
        for _ in 0..400 {
            let order = idx.epoch_order(SamplerKind::Smote, &mut rng);
            assert_eq!(order.len(), 5);
            let mut unique = order.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), 5);
            order.iter().for_each(|&i| seen[i] += 1);
        }
        // Each of the 8 samples is in an epoch with probability 5/8.
        for s in seen {
            assert!((s as f64 / 400.0 - 0.625).abs() < 0.08, "{seen:?}");
        }
        // Natural and class-balanced orders never draw synthetic samples.
        assert!(idx.epoch_order(SamplerKind::Natural, &mut rng).iter().all(|&i| i < 5));
        assert!(idx.epoch_order(SamplerKind::ClassBalanced, &mut rng).iter().all(|&i| i < 5));
    }

    #[test]
    fn batches_keep_the_remainder() {
        let b = into_batches((0..10).collect(), 4);
        assert_eq!(b.len(), 3);
        assert_eq!(b[2], vec![8, 9]);
        assert_eq!(batches_per_epoch(10, 4), 3);
        assert_eq!(batches_per_epoch(12406, 128), 97);
    }
}
