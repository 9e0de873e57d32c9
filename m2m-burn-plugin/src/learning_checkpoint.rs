//! burn-train's checkpoints (its `LearningCheckpointer`: model, optimiser and scheduler
//! records, one file each per epoch) written before training goes on, and their faults
//! (a full disk, a failed write, a damaged file) as one error that says what happened.
//!
//! burn-train hands each record to a checkpointer thread of its own (`AsyncCheckpointer`),
//! which serialises the record's tensors while the training loop runs on. On a fusion
//! backend (burn's `cuda`, `wgpu` and `vulkan` features) that read races the training
//! stream and the process aborts with "Should have handle for tensor" (tracel-ai/burn#4347).
//! [`save_and_wait`] asks each thread for the epoch just saved: a thread serves requests
//! in order, so the answer comes once its write is done, and training goes on only then.
//! No tensor of the record is read while the training stream runs, which closes the race.
//!
//! A checkpointer thread that fails to write stops burn-train's `Interrupter` with the
//! error; the read-back of that epoch then fails inside burn-train with a panic. Both are
//! caught here, quietly, and turned into a [`CheckpointFault`].

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::train::metric::store::EventStoreClient;
use burn::train::{Interrupter, Learner, LearningCheckpointer, LearningComponentsTypes};

use crate::quiet::{panic_text, quietly};

/// What went wrong with a burn-train checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCause {
    /// The file system is full or a quota is reached.
    NoSpace {
        /// Bytes free for this user in the checkpoint folder, where it could be read.
        free: Option<u64>,
        /// The size of the newest complete checkpoint on disk, where there is one.
        needed: Option<u64>,
    },
    /// Another write error (permissions, I/O), as burn-train reported it.
    Write(String),
    /// The checkpoint could not be read back (damaged, truncated or missing files).
    Read(String),
}

/// A burn-train checkpoint that could not be written or read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFault {
    /// burn-train's checkpoint folder (`ARTIFACT_DIR/checkpoint`).
    pub dir: PathBuf,
    /// The checkpoint's number: epochs done when it was written (burn-train's count).
    pub epoch: usize,
    pub cause: FaultCause,
    /// The checkpoints complete on disk (model, optimiser and scheduler files), oldest first.
    pub complete: Vec<usize>,
}

impl CheckpointFault {
    /// What went wrong, without where: `no space left on device (0.2 MiB free, a
    /// checkpoint takes 1.4 MiB)`, `the write failed: ...`, `it cannot be read: ...`.
    pub fn reason(&self) -> String {
        match &self.cause {
            FaultCause::NoSpace { free, needed } => {
                let sizes = match (free, needed) {
                    (Some(free), Some(needed)) => {
                        format!(" ({} free, a checkpoint takes {})", human_size(*free), human_size(*needed))
                    }
                    (Some(free), None) => format!(" ({} free)", human_size(*free)),
                    _ => String::new(),
                };
                format!("no space left on device{sizes}")
            }
            FaultCause::Write(why) => format!("the write failed: {why}"),
            FaultCause::Read(why) => format!("it cannot be read: {why}"),
        }
    }

    /// Which checkpoint a run can resume from (burn-train's count of epochs).
    pub fn newest(&self) -> String {
        match self.complete.last() {
            Some(last) => format!("the newest complete checkpoint is the one after epoch {last}"),
            None => "there is no complete checkpoint in this folder".into(),
        }
    }
}

impl std::fmt::Display for CheckpointFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (dir, n) = (self.dir.display(), self.epoch);
        write!(f, "{dir}: the checkpoint after epoch {n}: {}; {}", self.reason(), self.newest())
    }
}

impl std::error::Error for CheckpointFault {}

/// `bytes` in KiB, MiB or GiB, whichever reads best.
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_048_576 => format!("{:.0} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.1} GiB", b / 1_073_741_824.0),
    }
}

/// Writes burn-train's checkpoint of `epoch` through `checkpointer` (its strategy decides
/// what to save and delete) and waits until every file is written, by reading it back.
/// Returns the learner as read back from the files: the caller may train on with it (what
/// a run resumed there would do) or keep its own (the same values, when the recorder
/// keeps full precision). `dir` is burn-train's checkpoint folder, for the fault's text.
pub fn save_and_wait<LC: LearningComponentsTypes>(
    checkpointer: &mut LearningCheckpointer<LC>,
    learner: &Learner<LC>,
    epoch: usize,
    store: &EventStoreClient,
    interrupter: &Interrupter,
    dir: &Path,
) -> Result<Learner<LC>, CheckpointFault> {
    let stopped_before = interrupter.should_stop();
    checkpointer.checkpoint(learner, epoch, store);
    let read_back = restore(checkpointer, learner, epoch, dir);
    // A checkpointer thread whose write failed stopped the interrupter with the error.
    let write_error = (!stopped_before && interrupter.should_stop()).then(|| interrupter.get_message());
    match (read_back, write_error) {
        (Ok(learner), None) => Ok(learner),
        // The write's own error says why; what the read-back of a half-written file says
        // ("the internal data format has changed", for a truncated file) would mislead.
        (_, Some(why)) => Err(fault(dir, epoch, why.unwrap_or_default(), FaultCause::Write)),
        (Err(e), None) => Err(e),
    }
}

/// burn-train's checkpoint of `epoch`, read into a copy of `learner` (what
/// `SupervisedTraining::checkpoint(epoch)` loads), or the reason it cannot be.
pub fn restore<LC: LearningComponentsTypes>(
    checkpointer: &LearningCheckpointer<LC>,
    learner: &Learner<LC>,
    epoch: usize,
    dir: &Path,
) -> Result<Learner<LC>, CheckpointFault> {
    let device = learner.model().devices()[0].clone();
    let copy = learner.clone();
    quietly(|| checkpointer.load_checkpoint(copy, &device, epoch))
        .map_err(|panic| fault(dir, epoch, panic_text(&panic), FaultCause::Read))
}

/// A fault of checkpoint `epoch` in `dir` with burn-train's message `why`: a full disk when
/// the message or the free space says so, else `cause(why)`.
fn fault(dir: &Path, epoch: usize, why: String, cause: fn(String) -> FaultCause) -> CheckpointFault {
    let complete: Vec<usize> = complete_checkpoints(dir).into_iter().filter(|&e| e != epoch).collect();
    let needed = complete.last().map(|&e| checkpoint_bytes(dir, e));
    let free = free_bytes(dir);
    let no_space = ["No space left on device", "os error 28", "Disk quota exceeded", "os error 122"]
        .iter()
        .any(|m| why.contains(m))
        || matches!((free, needed), (Some(free), Some(needed)) if free < needed);
    let cause = if no_space { FaultCause::NoSpace { free, needed } } else { cause(why) };
    CheckpointFault { dir: dir.to_path_buf(), epoch, cause, complete }
}

/// The epochs whose model, optimiser and scheduler files are all in `dir`, oldest first.
pub fn complete_checkpoints(dir: &Path) -> Vec<usize> {
    let mut found: std::collections::BTreeMap<usize, [bool; 3]> = Default::default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((kind, rest)) = name.split_once('-') else { continue };
        let Some(slot) = ["model", "optim", "scheduler"].iter().position(|k| *k == kind) else { continue };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let nonempty = entry.metadata().is_ok_and(|m| m.len() > 0);
        if let (Ok(epoch), true) = (digits.parse::<usize>(), nonempty) {
            if rest[digits.len()..].starts_with('.') {
                found.entry(epoch).or_default()[slot] = true;
            }
        }
    }
    found.into_iter().filter(|(_, have)| have.iter().all(|&h| h)).map(|(e, _)| e).collect()
}

/// The size of checkpoint `epoch`'s files in `dir`.
fn checkpoint_bytes(dir: &Path, epoch: usize) -> u64 {
    let suffix = format!("-{epoch}.");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(&suffix))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Bytes an unprivileged user may still write in `dir`'s file system.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}
