//! The one thing M2m needs from a model: logits for images in [0, 1], in a chosen mode;
//! and the evaluation scope that layers without a mode argument can consult.

use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Whether normalisation layers use batch statistics (and update running ones) or
/// running statistics only. `Eval` must be honoured on autodiff backends too: M2m
/// optimises inputs through f and g with gradients and must not touch their statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// An image classifier that M2m can translate through and the trainer can train.
///
/// Implement it for your own burn model to use M2m with it. burn 0.21's `BatchNorm`
/// ignores any mode on autodiff backends, so use a BatchNorm that honours [`Mode`]
/// (such as `m2m_burn_plugin::model::BatchNorm2d`).
pub trait Classifier<B: Backend>: Module<B> {
    /// Logits `[batch, classes]` for images `[batch, channels, height, width]` in [0, 1].
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2>;
    fn num_classes(&self) -> usize;
}

thread_local! {
    static EVAL_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with every scope-aware layer of this thread in evaluation mode: running
/// statistics, no statistics update, no dropout. M2m translates inside this scope, so
/// models that keep burn's one-argument `forward` (no [`Mode`]) can still be read in
/// evaluation mode on autodiff backends, provided they use layers that ask
/// [`in_eval_scope`] (`m2m_burn_plugin::nn::{BatchNorm, Dropout}`, drop-ins for burn's).
pub fn eval_scope<R>(f: impl FnOnce() -> R) -> R {
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            EVAL_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
    EVAL_DEPTH.with(|d| d.set(d.get() + 1));
    let _exit = Exit; // also leaves the scope when `f` panics
    f()
}

/// Whether this thread is inside [`eval_scope`].
pub fn in_eval_scope() -> bool {
    EVAL_DEPTH.with(|d| d.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scope_nests_and_is_left_on_panic() {
        assert!(!in_eval_scope());
        eval_scope(|| {
            assert!(in_eval_scope());
            eval_scope(|| assert!(in_eval_scope()));
            assert!(in_eval_scope());
        });
        assert!(!in_eval_scope());
        assert!(std::panic::catch_unwind(|| eval_scope(|| panic!("inside"))).is_err());
        assert!(!in_eval_scope());
        // Per thread: another thread is not in this one's scope.
        eval_scope(|| assert!(!std::thread::spawn(in_eval_scope).join().unwrap()));
    }
}
