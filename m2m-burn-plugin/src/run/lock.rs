//! The lock that lets one process at a time train a run directory: a lease, so that a
//! process on any host can take over a lock whose holder is gone.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::stop::{Busy, LeaseWatch, Stopped};

/// The lease when `M2M_LOCK_LEASE` does not set one: a lock whose heartbeat is older is
/// taken over. Long enough for a slow shared file system, short enough that a requeued
/// Slurm task does not wait long for the lock its cancelled predecessor left.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// Only one process trains a run directory at a time (a cached g, a suite's cell or the
/// prefix other cells fork from, with suite shards sharing a folder). The lock file
/// `NAME.lock` beside the run holds `host pid token`; its holder refreshes the file's
/// modification time (the heartbeat) every quarter of the lease. Another process, on any
/// host, takes the lock over when its heartbeat is older than the lease (the holder was
/// killed, its node died, or it is suspended), or at once when the holder is a process of
/// its own host that no longer runs, with a warning naming the old holder. A holder that
/// finds its lock taken over stops its run ([`crate::stop`]) instead of writing beside
/// the new one. Heartbeats compare file times with the reader's clock: hosts sharing a
/// folder need clocks within a small part of the lease.
pub struct RunLock {
    path: PathBuf,
    /// The lock file's content as this process wrote it.
    me: String,
    /// Ends the heartbeat thread.
    released: Arc<AtomicBool>,
    _watch: LeaseWatch,
}

impl RunLock {
    /// Waits for and takes the lock of the run directory `run`; `what` names it in logs.
    pub fn acquire(run: &Path, what: &str) -> anyhow::Result<RunLock> {
        let mut told = false;
        loop {
            match Self::try_acquire(run, what)? {
                Ok(lock) => return Ok(lock),
                Err(Busy { holder }) => {
                    if !told {
                        tracing::info!(
                            "{what}: another process ({holder}) is training {}; waiting (its lock is taken over \
                             when its heartbeat is older than {} s)",
                            run.display(),
                            lease()?.as_secs()
                        );
                        told = true;
                    }
                    if let Some(stop) = crate::stop::signal_received() {
                        return Err(stop.into());
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
    }

    /// Takes the lock of `run` if no live process holds it (taking over an expired one);
    /// `Ok(Err(Busy))` when one does.
    pub fn try_acquire(run: &Path, what: &str) -> anyhow::Result<Result<RunLock, Busy>> {
        let lease = lease()?;
        let path = lock_path(run);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let me = format!("{} {} {:016x}", crate::fs::host_name(), std::process::id(), token());
        for _ in 0..3 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                    return Ok(Ok(RunLock::hold(path, me, lease)));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    match expired(&path, &holder, lease) {
                        Some(why) => {
                            tracing::warn!("{what}: taking over {} from {} ({why})", path.display(), describe(&holder));
                            let _ = std::fs::remove_file(&path);
                        }
                        None => return Ok(Err(Busy { holder: describe(&holder) })),
                    }
                }
                Err(e) => return Err(e).with_context(|| format!("creating the lock {}", path.display())),
            }
        }
        // Others kept taking it over at the same moment: let them have it.
        Ok(Err(Busy { holder: describe(&std::fs::read_to_string(&path).unwrap_or_default()) }))
    }

    /// Starts the heartbeat of a lock just written with content `me`.
    fn hold(path: PathBuf, me: String, lease: Duration) -> RunLock {
        let released = Arc::new(AtomicBool::new(false));
        let last_beat = Arc::new(AtomicU64::new(now_secs()));
        let lost = Arc::new(std::sync::Mutex::new(None::<Stopped>));
        // Whether the lock file still holds `me`; the reason it was lost otherwise.
        let check_file = {
            let (path, me) = (path.clone(), me.clone());
            move || -> Option<Stopped> {
                let now = std::fs::read_to_string(&path).unwrap_or_default();
                (now != me).then(|| Stopped::LeaseLost {
                    lock: path.display().to_string(),
                    why: if now.is_empty() {
                        "the file is gone".into()
                    } else {
                        format!("it now reads {}", describe(&now))
                    },
                })
            }
        };
        let beat = Duration::from_secs_f64((lease.as_secs_f64() / 4.0).clamp(1.0, 60.0));
        {
            let (released, last_beat, lost, check_file, path) =
                (released.clone(), last_beat.clone(), lost.clone(), check_file.clone(), path.clone());
            std::thread::spawn(move || {
                while !released.load(Ordering::SeqCst) {
                    std::thread::sleep(beat.min(Duration::from_millis(500)));
                    if released.load(Ordering::SeqCst) || now_secs() < last_beat.load(Ordering::SeqCst) + beat.as_secs()
                    {
                        continue;
                    }
                    if let Some(why) = check_file() {
                        *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                        return;
                    }
                    let touched = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .and_then(|f| f.set_modified(SystemTime::now()));
                    match touched {
                        Ok(()) => last_beat.store(now_secs(), Ordering::SeqCst),
                        Err(e) => tracing::warn!("refreshing the lease of {}: {e}", path.display()),
                    }
                }
            });
        }
        // Asked after every training step: cheap while the heartbeat is recent; after a
        // gap longer than the lease (the process was suspended) the file is read at once,
        // before the run writes anything more.
        let watch = LeaseWatch::register(move || {
            if let Some(why) = lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return Some(why);
            }
            if now_secs() > last_beat.load(Ordering::SeqCst) + lease.as_secs() {
                return check_file();
            }
            None
        });
        RunLock { path, me, released, _watch: watch }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.released.store(true, Ordering::SeqCst);
        // Only our own: a lock taken over belongs to its new holder.
        if std::fs::read_to_string(&self.path).is_ok_and(|now| now == self.me) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The lock file of the run directory `run`: `NAME.lock` beside it (appended: run names
/// hold dots).
pub fn lock_path(run: &Path) -> PathBuf {
    crate::fs::with_suffix(run, ".lock")
}

/// Who holds the lock of `run` (`process P on HOST`), if it is locked.
pub fn lock_holder(run: &Path) -> Option<String> {
    std::fs::read_to_string(lock_path(run)).ok().map(|holder| describe(&holder))
}

/// The lease: `M2M_LOCK_LEASE` seconds, else [`DEFAULT_LEASE`].
pub fn lease() -> anyhow::Result<Duration> {
    match std::env::var("M2M_LOCK_LEASE") {
        Err(_) => Ok(DEFAULT_LEASE),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(s) if s >= 4 => Ok(Duration::from_secs(s)),
            _ => anyhow::bail!("M2M_LOCK_LEASE={text}: expected a whole number of seconds, at least 4"),
        },
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Tells two locks of the same process apart (a lock released and taken again).
fn token() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// `host pid` of a lock's content (locks of older m2m versions hold just that).
fn describe(holder: &str) -> String {
    let mut parts = holder.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(h), Some(pid)) => format!("process {pid} on {h}"),
        _ if holder.trim().is_empty() => "an empty lock file".into(),
        _ => format!("`{}`", holder.trim()),
    }
}

/// Why the lock at `path` holding `holder` may be taken over, if it may: its holder is a
/// process of this host that no longer runs, or its heartbeat is older than `lease`.
fn expired(path: &Path, holder: &str, lease: Duration) -> Option<String> {
    let mut parts = holder.split_whitespace();
    if let (Some(h), Some(pid)) = (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
        if h == crate::fs::host_name() && !Path::new(&format!("/proc/{pid}")).exists() {
            return Some("that process is gone".into());
        }
    }
    let age = std::fs::metadata(path).and_then(|m| m.modified()).ok()?.elapsed().unwrap_or_default();
    (age > lease).then(|| format!("no heartbeat for {} s, lease {} s", age.as_secs(), lease.as_secs()))
}
