//! Named random streams. Every epoch of every stream is seeded on its own from the run's
//! seed, so an epoch's batches, augmentations and translations do not depend on what ran
//! before it: a resumed run, a run started at a later epoch and the burn-train hook all
//! see the same numbers as an uninterrupted run of the `m2m` CLI.

use rand::SeedableRng;

/// The generator of every random stream of m2m: ChaCha with 12 rounds, named here rather
/// than taken as rand's `StdRng`, which rand documents as non-portable (any release may
/// change its algorithm). A run directory promises the same numbers to a resumed run built
/// by a newer m2m; tests pin the first draws of each stream (`tests/tests/streams.rs`).
pub use chacha20::ChaCha12Rng;

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
    /// Draws on burn's generator inside a training step ([`seeded_draws`]): the dropout
    /// masks of f's training steps under the burn-train hook.
    StepDraws = 5,
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
pub fn stream_rng(seed: u64, epoch: usize, stream: SeedStream) -> ChaCha12Rng {
    ChaCha12Rng::seed_from_u64(derive_seed(seed, epoch, stream))
}

/// Runs `draw` with burn's random generator of backend `B` seeded with `seed`, holding a
/// process-wide lock. burn backends draw parameter initialisation, dropout masks and
/// `Tensor::random` from one generator per process that `Backend::seed` resets, so two
/// threads that seed and draw at the same time (tests, or a program training two models)
/// would interleave their draws and neither would get the numbers of its seed. Every draw
/// meant to be reproducible goes through here; `draw` must not call `with_seed` itself.
///
/// The lock only helps if every draw of the process takes it: a draw elsewhere (burn's own
/// `Dropout` or a layer initialised with burn's `init` in another thread) can still land
/// in the middle of a seeded one. m2m itself draws nothing outside this function.
///
/// # Panics
/// When `draw` calls `with_seed` (directly, or through a layer that draws with
/// [`scoped_draw`]): the lock is not re-entrant, and waiting on it would hang.
pub fn with_seed<B: burn::tensor::backend::Backend, T>(device: &B::Device, seed: u64, draw: impl FnOnce() -> T) -> T {
    locked(|| {
        B::seed(device, seed);
        draw()
    })
}

/// Runs `f` holding the lock of [`with_seed`].
fn locked<T>(f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    struct Held;
    impl Drop for Held {
        fn drop(&mut self) {
            HOLDING.with(|h| h.set(false));
        }
    }
    assert!(
        !HOLDING.with(|h| h.replace(true)),
        "m2m_core::seed::with_seed called inside with_seed on the same thread (it would wait for itself)"
    );
    let _held = Held;
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f()
}

thread_local! {
    /// Whether this thread holds [`with_seed`]'s lock.
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The running [`seeded_draws`] scope of this thread: its seed and the next draw's index.
    static STEP_DRAWS: std::cell::Cell<Option<(u64, usize)>> = const { std::cell::Cell::new(None) };
}

/// The seed of the draws in training step `iteration` (0-based within the epoch) of
/// `epoch`, for a run seeded with `seed`: what the burn-train hook gives [`seeded_draws`].
pub fn step_seed(seed: u64, epoch: usize, iteration: usize) -> u64 {
    derive_seed(derive_seed(seed, epoch, SeedStream::StepDraws), iteration, SeedStream::StepDraws)
}

/// Runs `f` with this thread's [`scoped_draw`]s seeded from `seed`: the k-th draw inside
/// gets its own seed derived from `seed` and k, so a training step's dropout masks are the
/// same in every run, whatever other threads draw meanwhile. Scopes do not nest: an inner
/// one replaces the outer one until it ends.
pub fn seeded_draws<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<(u64, usize)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            STEP_DRAWS.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(STEP_DRAWS.with(|s| s.replace(Some((seed, 0)))));
    f()
}

/// Runs `draw` (one draw from burn's generator, such as a dropout mask) holding
/// [`with_seed`]'s lock: inside [`seeded_draws`] with the generator seeded from the
/// scope's next seed, reproducibly whatever other threads draw; outside any scope from the
/// generator as it is, as burn's own layers draw (reproducible in a program that seeds
/// burn's generator and draws on one thread), but never in the middle of another thread's
/// seeded draw.
pub fn scoped_draw<B: burn::tensor::backend::Backend, T>(device: &B::Device, draw: impl FnOnce() -> T) -> T {
    let seed = STEP_DRAWS.with(|s| {
        let (seed, k) = s.get()?;
        s.set(Some((seed, k + 1)));
        Some(derive_seed(seed, k, SeedStream::StepDraws))
    });
    match seed {
        Some(seed) => with_seed::<B, T>(device, seed, draw),
        None => locked(draw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_epochs_differ_and_repeat() {
        let all = [
            SeedStream::Sampling,
            SeedStream::Augmentation,
            SeedStream::Translation,
            SeedStream::Smote,
            SeedStream::StepDraws,
        ];
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

    #[test]
    fn scoped_draws_count_per_scope_and_restore_the_outer_one() {
        assert!(STEP_DRAWS.with(|s| s.get()).is_none());
        seeded_draws(3, || {
            STEP_DRAWS.with(|s| s.set(Some((3, 2))));
            seeded_draws(4, || assert_eq!(STEP_DRAWS.with(|s| s.get()), Some((4, 0))));
            assert_eq!(STEP_DRAWS.with(|s| s.get()), Some((3, 2)), "the outer scope goes on where it was");
        });
        assert!(std::panic::catch_unwind(|| seeded_draws(5, || panic!("inside"))).is_err());
        assert!(STEP_DRAWS.with(|s| s.get()).is_none(), "left on panic");
        assert_ne!(step_seed(1, 2, 3), step_seed(1, 3, 2));
        assert_ne!(step_seed(1, 2, 3), step_seed(2, 2, 3));
    }
}
