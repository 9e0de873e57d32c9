//! M2m for burn: data sets, models, RON recipes and burn-train training on the CPU
//! (Flex) backend or, with the `cuda` feature, on NVIDIA GPUs.

pub mod backend;
pub mod data;
pub mod fingerprint;
pub mod fs;
pub mod hook;
pub mod learning_checkpoint;
pub mod m2m;
pub mod malloc;
pub mod model;
pub mod nn;
pub mod parity;
pub mod progress;
pub(crate) mod quiet;
pub mod recipe;
pub mod run;
pub mod run_dir;
pub mod stop;
pub mod suite;
pub mod tensorboard;
pub mod train;
