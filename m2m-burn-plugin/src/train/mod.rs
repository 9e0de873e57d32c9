//! Training through burn-train: loaders (`batch`), the LR scheduler, the epoch loop
//! (`strategy`, in the steps of `epoch`), evaluation, forks and starts, run directories,
//! and `launch`, which runs a recipe through all of them.

mod batch;
mod epoch;
mod eval;
mod fork;
mod launch;
mod renderer;
mod scheduler;
mod start;
mod step;
mod strategy;

pub use batch::{EvalLoader, ImageBatch, TrainLoader};
pub use eval::{evaluate, logit_adjustment, Evaluation};
pub use fork::fork_unavailable;
pub use launch::{load_best, train_recipe, Prefixes, ProgressView, RunOutcome};
pub use renderer::LogRenderer;
pub use scheduler::EpochScheduler;
pub use start::{load_start, StartPoint, StartRecord};
pub use strategy::{on_board, Board, Components, ImbalancedStrategy, Optim};
