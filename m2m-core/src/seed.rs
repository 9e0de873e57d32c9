//! Named random streams. Every epoch of every stream is seeded on its own from the run's
//! seed, so an epoch's batches, augmentations and translations do not depend on what ran
//! before it: a resumed run, a run started at a later epoch and the burn-train hook all
//! see the same numbers as an uninterrupted run of the `m2m` CLI.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// The independent random streams of a training run. The discriminants are part of the
/// on-disk contract (runs resumed by a newer m2m keep their numbers): never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeedStream {
    /// The sample order of an epoch (natural shuffle, class-balanced draws).
    Sampling = 1,
    /// Random crops and flips of the training images.
    Augmentation = 2,
    /// M2m's slot plan, seeds, random starts and acceptance draws.
    Translation = 3,
    /// SMOTE's synthetic samples (drawn once per run, "epoch" 0).
    Smote = 4,
}

/// Mixes the run's seed, an epoch and a stream into an independent seed (SplitMix64's
/// finaliser over a xor of odd multiples).
pub fn derive_seed(seed: u64, epoch: usize, stream: SeedStream) -> u64 {
    let mut z =
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (stream as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of `stream` in `epoch` (0-based) of a run seeded with `seed`.
pub fn stream_rng(seed: u64, epoch: usize, stream: SeedStream) -> StdRng {
    StdRng::seed_from_u64(derive_seed(seed, epoch, stream))
}

/// Runs `draw` with burn's random generator of backend `B` seeded with `seed`, holding a
/// process-wide lock. burn backends draw parameter initialisation, dropout masks and
/// `Tensor::random` from one generator per process that `Backend::seed` resets, so two
/// threads that seed and draw at the same time (tests, or a program training two models)
/// would interleave their draws and neither would get the numbers of its seed. Every draw
/// meant to be reproducible goes through here; `draw` must not call `with_seed` itself.
pub fn with_seed<B: burn::tensor::backend::Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    B::seed(device, seed);
    draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_epochs_differ_and_repeat() {
        let all = [SeedStream::Sampling, SeedStream::Augmentation, SeedStream::Translation, SeedStream::Smote];
        let mut seen = std::collections::HashSet::new();
        for s in all {
            for e in 0..50 {
                assert!(seen.insert(derive_seed(7, e, s)), "collision at {s:?} epoch {e}");
                assert_eq!(derive_seed(7, e, s), derive_seed(7, e, s));
            }
        }
        // The numbering the CLI has always used (runs from before the names resume exactly).
        assert_eq!(derive_seed(7, 3, SeedStream::Translation), 0xe792_2a7a_bb3f_0322);
        assert_eq!(derive_seed(42, 0, SeedStream::Sampling), 0x6bb1_50a2_df30_d29b);
    }
}
