//! The lock that lets one process at a time train a run directory.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Only one process trains a run directory at a time (a cached g, a suite's cell or the
/// prefix other cells fork from, with suite shards sharing a folder); the others wait and
/// then find it finished. The lock file `RUN.lock` beside the run holds `host pid`; a lock
/// left by a dead process on this host is taken over.
pub struct RunLock(PathBuf);

impl RunLock {
    /// Waits for and takes the lock of the run directory `run`; `what` names it in logs.
    pub fn acquire(run: &Path, what: &str) -> anyhow::Result<RunLock> {
        // Appended, not `with_extension`: run names such as `ERM.FashionMnist.r100.d0.s0` hold dots.
        let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = &run.with_file_name(format!("{name}.lock"));
        let me = format!("{} {}", host(), std::process::id());
        let mut told = false;
        loop {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                    return Ok(RunLock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(path).unwrap_or_default();
                    if is_stale(&holder) {
                        tracing::warn!(
                            "{what}: taking over {} left by a process that is gone ({holder})",
                            path.display()
                        );
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if !told {
                        tracing::info!(
                            "{what}: another process ({holder}) is training {}; waiting. If none is, delete {}",
                            run.display(),
                            path.display()
                        );
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(e).with_context(|| format!("creating the lock {}", path.display())),
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// A lock written by a process of this host that no longer runs.
fn is_stale(holder: &str) -> bool {
    let mut parts = holder.split_whitespace();
    match (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) => h == host() && !Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}
