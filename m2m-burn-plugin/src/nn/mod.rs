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

pub use batch_norm::{BatchNorm, BatchNormConfig};
pub use dropout::{Dropout, DropoutConfig};
