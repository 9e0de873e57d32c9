//! Drop-ins for burn's layers that behave differently in training and evaluation.
//!
//! burn 0.21's `BatchNorm` uses batch statistics (and updates its running ones), and its
//! `Dropout` drops, whenever the backend is an autodiff backend. M2m translates through f
//! and g on the autodiff backend (it needs input gradients) and must read both in
//! evaluation mode. These layers have burn's config, record layout and `forward`
//! signature, and switch to evaluation inside
//! [`eval_scope`](m2m_core::classifier::eval_scope), where M2m translates. Swapping the
//! import is all a model needs; checkpoints saved with burn's layers load unchanged.

mod batch_norm;
mod dropout;

/// A `Conv2d`'s forward pass on m2m's CPU kernels where they apply: on `Autodiff<Flex>` and
/// `Flex`, a convolution without bias, with one group and symmetric padding runs im2col +
/// gemm with its own backward pass (2-5x faster than Flex's own); anything else is
/// `conv.forward(x)`.
pub use crate::kernels::conv::conv2d;
pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use dropout::{Dropout, DropoutConfig};
