#![warn(missing_docs)]
//! M2m for burn: data sets, models, RON recipes and burn-train training on the CPU
//! (Flex) backend or, with the `cuda` or `wgpu` feature, on GPUs.
//!
//! The API for users:
//! - [`hook`]: M2m inside an existing burn-train program ([`hook::M2mHook`]).
//! - [`nn`]: drop-in BatchNorm and Dropout that M2m's translation can read in evaluation
//!   mode on an autodiff backend.
//! - [`tensorboard`]: TensorBoard event files for any burn-train program.
//! - [`backend`]: the backends m2m trains on, and how to pick one at run time.
//! - [`data`]: the data sets, their long-tailed subsets and augmentation.
//! - [`recipe`]: RON recipes, loaded and checked; [`run`]: training one.
//! - [`model`]: m2m's networks and their checkpoints; [`import`]: PyTorch state dicts.
//! - [`suite`]: comparison suites and their reports; [`m2m`]: the translation itself.
//!
//! Modules marked hidden in the documentation are not API: they serve the `m2m` and
//! `m2m-bench` binaries and the project's own tests, and may change in any release.

mod error;

#[doc(hidden)]
pub use error::stopped_by;
pub use error::Error;
pub use stop::{Busy, Stopped};

pub mod backend;
pub mod data;
pub mod hook;
pub mod import;
pub mod m2m;
pub mod model;
pub mod nn;
pub mod recipe;
pub mod run;
pub mod suite;
pub mod tensorboard;

#[doc(hidden)]
pub mod fingerprint;
#[doc(hidden)]
pub mod fs;
#[doc(hidden)]
pub mod kernels;
#[doc(hidden)]
pub mod learning_checkpoint;
#[doc(hidden)]
pub mod malloc;
#[doc(hidden)]
pub mod parity;
pub(crate) mod provenance;
pub(crate) mod quiet;
#[doc(hidden)]
pub mod run_dir;
#[doc(hidden)]
pub mod stop;
#[doc(hidden)]
pub mod terminal;
#[doc(hidden)]
pub mod train;
