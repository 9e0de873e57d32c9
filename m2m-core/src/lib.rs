#![warn(missing_docs)]
//! Backend-generic pieces of M2m (Kim, Jeong, Shin, CVPR 2020): imbalance arithmetic,
//! epoch samplers, SMOTE, class weights, losses, learning-rate schedules, translation and
//! imbalanced-classification metrics.
//!
//! Everything that touches tensors is generic over a burn `Backend`, so the same code
//! runs on the CPU (Flex) and CUDA backends.

pub mod classifier;
pub mod imbalance;
pub mod loss;
pub mod metrics;
pub mod sampling;
pub mod schedule;
pub mod seed;
pub mod smote;
pub mod translation;
pub mod weighting;
