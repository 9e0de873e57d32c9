//! Training-time augmentation on raw bytes: random crop with zero padding and a
//! horizontal flip, producing `f32` pixels in [0, 1] (normalisation lives in the model).

use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// The training-time augmentation of a run (recipe field `dataset.augmentation`); applied
/// to training batches only, never to validation or test images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Augmentation {
    /// Zero padding of the random crop, in pixels on each side (the image is shifted by up
    /// to this much in each direction); 0 turns cropping off. Must be smaller than the
    /// image's height and width.
    pub crop_padding: usize,
    /// Random horizontal flip with probability 1/2.
    pub horizontal_flip: bool,
}

impl Augmentation {
    /// No augmentation: pixels are only scaled to [0, 1].
    pub const NONE: Augmentation = Augmentation { crop_padding: 0, horizontal_flip: false };
}

/// Writes one image (`c×h×w` bytes) into `out` as floats in [0, 1], augmented.
pub fn augment_into<R: Rng + ?Sized>(
    image: &[u8],
    (c, h, w): (usize, usize, usize),
    aug: Augmentation,
    rng: &mut R,
    out: &mut [f32],
) {
    debug_assert_eq!(image.len(), c * h * w);
    debug_assert_eq!(out.len(), c * h * w);
    let p = aug.crop_padding as isize;
    let (dy, dx) = if p > 0 {
        (rng.random_range(0..=2 * p as i64) as isize - p, rng.random_range(0..=2 * p as i64) as isize - p)
    } else {
        (0, 0)
    };
    let flip = aug.horizontal_flip && rng.random_bool(0.5);
    for ch in 0..c {
        let plane = &image[ch * h * w..(ch + 1) * h * w];
        let dst = &mut out[ch * h * w..(ch + 1) * h * w];
        for y in 0..h {
            let sy = y as isize + dy;
            for x in 0..w {
                // Crop first, then flip the cropped image (torchvision order).
                let xc = if flip { w - 1 - x } else { x };
                let sx = xc as isize + dx;
                dst[y * w + x] = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                    plane[sy as usize * w + sx as usize] as f32 / 255.0
                } else {
                    0.0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use m2m_core::seed::ChaCha12Rng;
    use rand::SeedableRng;

    #[test]
    fn no_augmentation_only_scales() {
        let img: Vec<u8> = (0..12).map(|v| v * 20).collect();
        let mut out = vec![0.0; 12];
        augment_into(&img, (3, 2, 2), Augmentation::NONE, &mut ChaCha12Rng::seed_from_u64(0), &mut out);
        let expect: Vec<f32> = img.iter().map(|&v| v as f32 / 255.0).collect();
        assert_eq!(out, expect);
    }

    #[test]
    fn crop_shifts_content_and_pads_with_zeros() {
        // A single bright pixel; after any crop it is either shifted or gone, never duplicated,
        // and the sum of pixels never grows.
        let mut img = vec![0u8; 8 * 8];
        img[3 * 8 + 4] = 255;
        let mut rng = ChaCha12Rng::seed_from_u64(5);
        let aug = Augmentation { crop_padding: 2, horizontal_flip: true };
        let mut seen_shift = false;
        for _ in 0..50 {
            let mut out = vec![0.0; 64];
            augment_into(&img, (1, 8, 8), aug, &mut rng, &mut out);
            let ones = out.iter().filter(|&&v| v == 1.0).count();
            assert!(ones <= 1);
            assert!(out.iter().all(|&v| v == 0.0 || v == 1.0));
            if ones == 1 && out[3 * 8 + 4] != 1.0 {
                seen_shift = true;
            }
        }
        assert!(seen_shift);
    }

    #[test]
    fn flip_mirrors_columns() {
        let img: Vec<u8> = vec![0, 255, 0, 0];
        let aug = Augmentation { crop_padding: 0, horizontal_flip: true };
        let mut rng = ChaCha12Rng::seed_from_u64(1);
        let mut saw = [false, false];
        for _ in 0..40 {
            let mut out = vec![0.0; 4];
            augment_into(&img, (1, 1, 4), aug, &mut rng, &mut out);
            if out == [0.0, 1.0, 0.0, 0.0] {
                saw[0] = true;
            } else if out == [0.0, 0.0, 1.0, 0.0] {
                saw[1] = true;
            } else {
                panic!("unexpected {out:?}");
            }
        }
        assert!(saw[0] && saw[1]);
    }
}
