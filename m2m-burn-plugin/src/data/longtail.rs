//! Long-tailed subsets of a balanced training set and the M2m validation/test split.

use m2m_core::seed::ChaCha12Rng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// Which `N_k` images of class `k` form the long-tailed subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Selection {
    /// The first `N_k` images of each class in file order (the M2m code; deterministic).
    FirstInOrder,
    /// Shuffle each class with the data seed, then take `N_k` (the LDAM-DRW code).
    SeededShuffle,
}

/// Indices (into `labels`) of the long-tailed subset, in file order.
pub fn select_indices(labels: &[usize], counts: &[usize], selection: Selection, data_seed: u64) -> Vec<usize> {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); counts.len()];
    for (i, &y) in labels.iter().enumerate() {
        by_class[y].push(i);
    }
    if selection == Selection::SeededShuffle {
        let mut rng = ChaCha12Rng::seed_from_u64(data_seed);
        for members in &mut by_class {
            members.shuffle(&mut rng);
        }
    }
    let mut chosen: Vec<usize> =
        by_class.iter().zip(counts).flat_map(|(members, &n)| members.iter().copied().take(n)).collect();
    chosen.sort_unstable();
    chosen
}

/// Splits a test set: per class, the first `val_fraction` of its images (in file order)
/// become validation, the rest test (algorithm.md §5.2). Returns (validation, test) indices.
pub fn val_test_split(labels: &[usize], num_classes: usize, val_fraction: f64) -> (Vec<usize>, Vec<usize>) {
    let mut per_class = vec![0usize; num_classes];
    for &y in labels {
        per_class[y] += 1;
    }
    let n_val: Vec<usize> = per_class.iter().map(|&n| (n as f64 * val_fraction).floor() as usize).collect();
    let mut seen = vec![0usize; num_classes];
    let (mut val, mut test) = (Vec::new(), Vec::new());
    for (i, &y) in labels.iter().enumerate() {
        if seen[y] < n_val[y] {
            val.push(i);
        } else {
            test.push(i);
        }
        seen[y] += 1;
    }
    (val, test)
}

/// FNV-1a over the chosen indices: a short fingerprint of the subset for the manifest.
pub fn fingerprint(indices: &[usize]) -> String {
    let bytes: Vec<u8> = indices.iter().flat_map(|&i| (i as u64).to_le_bytes()).collect();
    format!("{:016x}", crate::fingerprint::fnv1a64(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_order_takes_the_first_members() {
        let labels = vec![0, 1, 0, 1, 0, 1, 0];
        assert_eq!(select_indices(&labels, &[3, 1], Selection::FirstInOrder, 0), vec![0, 1, 2, 4]);
    }

    #[test]
    fn seeded_shuffle_depends_on_the_seed_only() {
        let labels: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let a = select_indices(&labels, &[50, 10], Selection::SeededShuffle, 3);
        let b = select_indices(&labels, &[50, 10], Selection::SeededShuffle, 3);
        let c = select_indices(&labels, &[50, 10], Selection::SeededShuffle, 4);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.iter().filter(|&&i| labels[i] == 1).count(), 10);
        assert_ne!(a, select_indices(&labels, &[50, 10], Selection::FirstInOrder, 3));
    }

    #[test]
    fn m2m_split_is_first_ten_percent_per_class() {
        // 3 classes x 20 images interleaved.
        let labels: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let (val, test) = val_test_split(&labels, 3, 0.1);
        assert_eq!(val, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(test.len(), 54);
        assert_eq!(test[0], 6);
    }
}
