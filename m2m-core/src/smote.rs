//! SMOTE in pixel space as the M2m repository's suite runs it (algorithm.md §8.3), with correct
//! nearest neighbours: the reference computes distances on `uint8` arrays, whose
//! differences wrap modulo 256; here they are exact integers.

use rand::{Rng, RngExt};

/// Synthetic samples that bring every class up to the largest class.
#[derive(Debug, Clone, PartialEq)]
pub struct Synthetic {
    /// `labels.len()` images of `image_len` bytes each, back to back.
    pub pixels: Vec<u8>,
    /// Class of each synthetic image, in the order of `pixels`.
    pub labels: Vec<usize>,
}

/// For each class with `N_k < N_max`, makes `N_max - N_k` images
/// `round(λ x_i + (1 - λ) x_nn)`, λ ~ U(0, 1) per image. `x_i` cycles through the class
/// in order and the neighbour rank cycles through 1..N_k-1 (the first pass uses every
/// sample's nearest neighbour, the second its second nearest, ...). A class with one
/// sample is copied; an empty class stays empty.
pub fn smote<R: Rng + ?Sized>(
    pixels: &[u8],
    image_len: usize,
    labels: &[usize],
    num_classes: usize,
    rng: &mut R,
) -> Synthetic {
    assert_eq!(pixels.len(), image_len * labels.len(), "pixel buffer and labels disagree");
    let mut members = vec![Vec::new(); num_classes];
    for (i, &y) in labels.iter().enumerate() {
        members[y].push(i);
    }
    let n_max = members.iter().map(Vec::len).max().unwrap_or(0);
    let image = |i: usize| &pixels[i * image_len..(i + 1) * image_len];
    let mut out = Synthetic { pixels: Vec::new(), labels: Vec::new() };
    for (k, class) in members.iter().enumerate() {
        let n = class.len();
        if n == 0 || n == n_max {
            continue;
        }
        let needed = n_max - n;
        // Only the first `needed` samples act as x_i when needed < n; each needs as many
        // neighbours as passes over the class.
        let passes = needed.div_ceil(n).min(n.saturating_sub(1).max(1));
        let neighbours: Vec<Vec<usize>> =
            class.iter().take(needed.min(n)).map(|&i| nearest(image(i), i, class, image, passes)).collect();
        for j in 0..needed {
            let (slot, pass) = (j % n, j / n);
            let x = image(class[slot]);
            let nn = &neighbours[slot];
            let y = if nn.is_empty() { x } else { image(nn[pass % nn.len()]) };
            let lambda: f64 = rng.random();
            out.pixels
                .extend(x.iter().zip(y).map(|(&a, &b)| (lambda * a as f64 + (1.0 - lambda) * b as f64).round() as u8));
            out.labels.push(k);
        }
    }
    out
}

/// The `count` nearest other members of the class (squared L2 on exact integer
/// differences), nearest first; ties go to the lower index.
fn nearest<'a>(x: &[u8], own: usize, class: &[usize], image: impl Fn(usize) -> &'a [u8], count: usize) -> Vec<usize> {
    let mut d: Vec<(u64, usize)> = class
        .iter()
        .filter(|&&j| j != own)
        .map(|&j| (x.iter().zip(image(j)).map(|(&a, &b)| (a as i32 - b as i32).pow(2) as u64).sum(), j))
        .collect();
    let count = count.min(d.len());
    if count < d.len() {
        d.select_nth_unstable(count);
    }
    d.truncate(count);
    d.sort_unstable();
    d.into_iter().map(|(_, j)| j).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::ChaCha12Rng;
    use rand::SeedableRng;

    #[test]
    fn balances_classes_and_interpolates_between_true_nearest_neighbours() {
        // Class 0: 4 images; class 1: 2 images [10,10] and [250,250] plus [20,20].
        // Under uint8 wrap-around 10-250 = 16 (mod 256), so the reference would pair 10 with
        // 250; the true nearest neighbour of [10,10] is [20,20].
        let pixels = vec![0, 0, 1, 1, 2, 2, 3, 3, 10, 10, 250, 250, 20, 20];
        let labels = vec![0, 0, 0, 0, 1, 1, 1];
        let s = smote(&pixels, 2, &labels, 3, &mut ChaCha12Rng::seed_from_u64(1));
        assert_eq!(s.labels, vec![1]); // 4 - 3 = 1 image for class 1, none for empty class 2
                                       // x_0 = [10,10], its nearest neighbour is [20,20]: the new image lies between them.
        assert!(s.pixels.iter().all(|&p| (10..=20).contains(&p)), "{:?}", s.pixels);
        assert_eq!(s.pixels[0], s.pixels[1]);
    }

    #[test]
    fn cycles_samples_then_neighbour_ranks() {
        // One-dimensional images 0, 10, 30 in class 1; class 0 has 9, so 6 new images:
        // x cycles 0,10,30,0,10,30; neighbours of 0: 10 then 30; of 10: 0 then 30; of 30: 10 then 0.
        let mut pixels = vec![100; 9];
        pixels.extend([0, 10, 30]);
        let mut labels = vec![0; 9];
        labels.extend([1, 1, 1]);
        let s = smote(&pixels, 1, &labels, 2, &mut ChaCha12Rng::seed_from_u64(3));
        assert_eq!(s.labels, vec![1; 6]);
        let ranges = [(0, 10), (0, 10), (10, 30), (0, 30), (10, 30), (0, 30)];
        for (p, (lo, hi)) in s.pixels.iter().zip(ranges) {
            assert!((lo..=hi).contains(p), "{:?}", s.pixels);
        }
    }

    #[test]
    fn a_single_sample_class_is_copied() {
        let s = smote(&[5, 7, 9], 1, &[0, 0, 1], 2, &mut ChaCha12Rng::seed_from_u64(0));
        assert_eq!((s.pixels, s.labels), (vec![9], vec![1]));
    }
}
