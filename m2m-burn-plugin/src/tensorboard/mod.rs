//! TensorBoard event files, for any burn-train program and for every `m2m` run.
//!
//! - [`TensorBoardLogger`]: a burn-train `MetricLogger`; one line,
//!   `.with_metric_logger(TensorBoardLogger::new(dir))`, gives TensorBoard every numeric
//!   metric burn-train reports, per split, per iteration and per epoch.
//! - `RunBoard` (internal): what the `m2m` CLI writes into each run's `tensorboard/`
//!   folder after every epoch (learning rate, losses, balanced accuracy, geometric mean,
//!   thirds and per-class recall of val and test, M2m's acceptance per target class, g's
//!   and f's confidences, the translations gallery as an image), the resolved recipe as
//!   text, and the hparams plugin's record of the run, so that `tensorboard --logdir
//!   runs/suites/NAME/cells` compares every cell of a suite.
//!
//! No maintained crate writes TensorBoard's format without pulling in a protobuf runtime
//! of its own (`tensorboard-rs` is unmaintained since 2020); the messages are prost
//! derives of the subset of TensorBoard's .proto files we write (module `proto`) and the
//! framing is TFRecord's, with CRC-32C from the `crc` crate (module `event`). Each record
//! is one `write` on an unbuffered file: a killed process leaves a log readable up to its
//! last complete record.

mod board;
mod event;
mod logger;
pub(crate) mod proto;

pub(crate) use board::{m2m_scalars, recipe_hparams, write_experiment, RunBoard};
pub(crate) use event::EventWriter;
pub use logger::TensorBoardLogger;
