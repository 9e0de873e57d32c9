//! Stopping at the next safe point: on SIGTERM or SIGINT (Slurm's `scancel`, time limit
//! and preemption, Ctrl-C), and when a run's lock lease was taken over by another process
//! (`run::RunLock`). The training loop asks [`requested`] after every step; it then
//! abandons the epoch in progress (the newest complete checkpoint stays the resume
//! point), writes the run's state as stopped and returns a [`Stopped`] error, which the
//! CLI turns into exit code [`EXIT_STOPPED`]. Locks are released as that error unwinds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The exit status of a command stopped by a signal or a lost lease: `EX_TEMPFAIL` of
/// sysexits.h, "try again later". Running the same command again resumes.
pub const EXIT_STOPPED: u8 = 75;

/// Why a run stopped before finishing, when nothing went wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// SIGTERM or SIGINT (named) reached the process.
    #[error("stopped by {0}")]
    Signal(&'static str),
    /// Another process took over this run's lock (its lease expired: the process was
    /// suspended or its heartbeats did not reach the shared folder).
    #[error("stopped: the lock {lock} was taken over ({why}); the process now holding it trains the run")]
    LeaseLost {
        /// The lock file.
        lock: String,
        /// What showed the takeover: the lock file is gone, or names another holder.
        why: String,
    },
    /// The run was asked to pause after this many epochs (`Prefixes::pause_after`: a
    /// search rung ends there); it resumes from there like any stopped run.
    #[error("paused after {0} epochs, where a search rung ends")]
    Rung(usize),
}

/// A run that another live process is training now: it holds the run's lock, whose lease
/// it keeps renewing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{holder} is training it")]
pub struct Busy {
    /// The process holding the lock, as `process PID on HOST` from its lock file.
    pub holder: String,
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`m2m suite ... --dry-run | head`)
/// panics in `println!`. With the default action the process ends quietly instead, with
/// the status shells report as 141, as other command-line tools do. Everything m2m writes
/// to disk is written atomically, so nothing written is lost either way. Call it first in
/// `main`, before any thread starts (the `m2m` and `m2m-bench` binaries do).
pub fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The signal received first (0: none).
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// A check that a lease this process holds is still its own (`run::RunLock`).
type LeaseCheck = Arc<dyn Fn() -> Option<Stopped> + Send + Sync>;
static LEASES: Mutex<Vec<LeaseCheck>> = Mutex::new(Vec::new());

/// Installs the handlers: the first SIGTERM or SIGINT asks the run to stop at its next
/// safe point; a second one ends the process at once (status 128 + signal, as a shell
/// reports it), for a person who does not want to wait for the step in progress.
pub fn install_signal_handlers() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let received = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT] {
        // Registered first, so it runs before the flag below is set: it exits only when
        // an earlier signal already set the flag.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, received.clone())?;
        signal_hook::flag::register(signal, received.clone())?;
        // SAFETY: the action only stores into an atomic (async-signal-safe).
        unsafe {
            signal_hook::low_level::register(signal, move || {
                let _ = SIGNAL.compare_exchange(0, signal as usize, Ordering::SeqCst, Ordering::SeqCst);
            })?;
        }
    }
    Ok(())
}

/// Why the current run should stop now, if it should.
pub fn requested() -> Option<Stopped> {
    if let Some(s) = signal_received() {
        return Some(s);
    }
    let leases: Vec<LeaseCheck> = LEASES.lock().unwrap_or_else(|p| p.into_inner()).clone();
    leases.iter().find_map(|check| check())
}

/// [`requested`], for the signals only: a lost lease stops its run, a signal everything.
pub fn signal_received() -> Option<Stopped> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s if s == signal_hook::consts::SIGTERM as usize => Some(Stopped::Signal("SIGTERM")),
        s if s == signal_hook::consts::SIGINT as usize => Some(Stopped::Signal("SIGINT")),
        _ => Some(Stopped::Signal("a signal")),
    }
}

/// A lease held by this process: while registered, its loss stops the run in progress.
pub(crate) struct LeaseWatch(LeaseCheck);

impl LeaseWatch {
    /// Registers `check`, which says whether (and why) the lease is lost; it is asked
    /// after every training step, so it must be cheap when the lease is fine.
    pub(crate) fn register(check: impl Fn() -> Option<Stopped> + Send + Sync + 'static) -> LeaseWatch {
        let check: LeaseCheck = Arc::new(check);
        LEASES.lock().unwrap_or_else(|p| p.into_inner()).push(check.clone());
        LeaseWatch(check)
    }
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        LEASES.lock().unwrap_or_else(|p| p.into_inner()).retain(|l| !Arc::ptr_eq(l, &self.0));
    }
}
