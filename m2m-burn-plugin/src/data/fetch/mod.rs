//! `m2m data fetch`: downloads a built-in data set from its official address, checks the
//! MD5 its publishers give, and installs it where recipes look for data ([`fetch_root`]).
//!
//! Downloads resume: an interrupted transfer leaves `<file>.part` in the root's
//! `.m2m-fetch` folder, and the next attempt (the same run retries a cut transfer, a later
//! run picks up what is left) asks the server for the rest with an HTTP Range request.
//! The data set's folder is built next to its final place, read back with the data set's
//! own reader, and renamed into place in one step; a folder already there is never
//! written into or replaced. `.m2m-fetch` keeps one empty lock file per data set, so that
//! two fetches of the same data set into the same root never run at once.

mod catalog;
mod download;
mod install;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use catalog::{Archive, Catalog, Layout};

use crate::data::DatasetName;

/// Where a fetch's progress goes (the CLI draws a bar on a terminal and prints plain
/// lines into a pipe).
pub trait FetchProgress {
    /// A transfer of `file` from `url` starts with `done` bytes already on disk, of
    /// `total` when the server announced it.
    fn start(&mut self, file: &str, url: &str, done: u64, total: Option<u64>);
    /// `done` bytes of the file are on disk.
    fn advance(&mut self, done: u64);
    /// The transfer ended (completely or not).
    fn finish(&mut self);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl FetchProgress for Silent {
    fn start(&mut self, _: &str, _: &str, _: u64, _: Option<u64>) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// What a fetch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Downloaded, checked and installed into this folder.
    Installed(PathBuf),
    /// The folder was already there with the data set's files; nothing was downloaded.
    AlreadyThere(PathBuf),
}

impl Fetched {
    /// The data set's folder.
    pub fn path(&self) -> &Path {
        match self {
            Fetched::Installed(p) | Fetched::AlreadyThere(p) => p,
        }
    }
}

/// Why a fetch stopped. Each message is one line naming the address or file and, where
/// the fix is to do it by hand, how.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No address delivered the file with its published MD5.
    #[error("cannot download {file}: {failures}. {manual}")]
    Download {
        /// The file.
        file: String,
        /// Each address tried, with what went wrong there.
        failures: String,
        /// How to install the data set by hand.
        manual: String,
    },
    /// The downloaded archive (its MD5 as published) does not unpack into the data set.
    #[error("{path} (from {url}): {reason}. {manual}")]
    Archive {
        /// The downloaded file.
        path: PathBuf,
        /// Where it came from.
        url: String,
        /// What is wrong with it.
        reason: String,
        /// How to install the data set by hand.
        manual: String,
    },
    /// The data set's folder exists without the data set's files.
    #[error(
        "{path} exists but does not hold the data set's files, and a fetch never writes into an existing \
         folder: move it away and fetch again, or point `dataset.path` at the right folder"
    )]
    Occupied {
        /// The folder.
        path: PathBuf,
    },
    /// Another `m2m data fetch` holds the root's lock for this data set.
    #[error("{path}: another `m2m data fetch` is installing this data set here; wait for it to finish")]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// This machine's file system refused (full disk, permissions, ...).
    #[error("{path}: {cause}")]
    Local {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
}

impl FetchError {
    fn local(path: &Path, cause: std::io::Error) -> FetchError {
        FetchError::Local { path: path.to_path_buf(), cause }
    }
}

/// Where `m2m data fetch` installs data sets, and where recipes look right after
/// `$M2M_DATA`: `$M2M_DATA` itself, else `data/` in m2m's cache folder
/// (`$M2M_CACHE`, `$XDG_CACHE_HOME/m2m` or `~/.cache/m2m`).
pub fn fetch_root() -> Option<PathBuf> {
    std::env::var_os("M2M_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| crate::fs::cache_dir().map(|c| c.join("data")))
}

/// Downloads `dataset` from its official addresses into `root` (see the module docs).
pub fn fetch(dataset: DatasetName, root: &Path, progress: &mut dyn FetchProgress) -> Result<Fetched, FetchError> {
    fetch_from(&Catalog::official(dataset), root, progress)
}

/// [`fetch`] from the files and addresses of `catalog` (tests serve their own archives
/// on the loopback address).
#[doc(hidden)]
pub fn fetch_from(catalog: &Catalog, root: &Path, progress: &mut dyn FetchProgress) -> Result<Fetched, FetchError> {
    let target = root.join(catalog.dataset.fetch_folder());
    if let Some(done) = existing(catalog.dataset, &target)? {
        return Ok(done);
    }
    let work = root.join(".m2m-fetch");
    std::fs::create_dir_all(&work).map_err(|e| FetchError::local(&work, e))?;
    let lock = lock(&work, catalog.dataset)?;
    // Another fetch may have finished while this one started.
    if let Some(done) = existing(catalog.dataset, &target)? {
        return Ok(done);
    }
    let manual = manual(catalog, root);
    let agent = download::agent();
    let mut files = Vec::with_capacity(catalog.archives.len());
    for archive in &catalog.archives {
        files.push(download::download(&agent, archive, &work, progress).map_err(|e| with_manual(e, &manual))?);
    }
    install::install(catalog, &files, &work, &target).map_err(|e| with_manual(e, &manual))?;
    // The downloads are ours and now unpacked. The lock file stays: deleting it would let
    // a fetch that opened it a moment ago lock a file no one else sees.
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    drop(lock);
    Ok(Fetched::Installed(target))
}

/// `Some` when `target` already holds the data set; an error when it exists without it.
fn existing(dataset: DatasetName, target: &Path) -> Result<Option<Fetched>, FetchError> {
    if !target.exists() {
        return Ok(None);
    }
    if dataset.has_files(target) {
        Ok(Some(Fetched::AlreadyThere(target.to_path_buf())))
    } else {
        Err(FetchError::Occupied { path: target.to_path_buf() })
    }
}

/// An exclusive `flock` on a lock file, released when dropped.
struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        // Released explicitly: a child process forked meanwhile (and not yet exec'd)
        // shares the descriptor, and closing ours alone would leave the lock held.
        let _ = rustix::fs::flock(&self.0, rustix::fs::FlockOperation::Unlock);
    }
}

/// An exclusive lock on `work/<folder>.lock`.
fn lock(work: &Path, dataset: DatasetName) -> Result<Lock, FetchError> {
    let path = work.join(format!("{}.lock", dataset.fetch_folder()));
    let file = File::create(&path).map_err(|e| FetchError::local(&path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Lock(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(FetchError::Busy { path }),
        Err(e) => Err(FetchError::local(&path, e.into())),
    }
}

/// The steps to install the data set by hand.
fn manual(catalog: &Catalog, root: &Path) -> String {
    let folder = root.join(catalog.dataset.fetch_folder());
    match catalog.layout() {
        Layout::Tarball => {
            let a = &catalog.archives[0];
            format!(
                "To install it by hand: download {} (MD5 {}) and unpack it in {}, which gives {}",
                a.urls[0],
                a.md5,
                root.display(),
                folder.display()
            )
        }
        Layout::GzipFiles => {
            let urls: Vec<&str> = catalog.archives.iter().map(|a| a.urls[0].as_str()).collect();
            format!("To install it by hand: download {} into {}, as they are", urls.join(", "), folder.display())
        }
    }
}

fn with_manual(e: FetchError, steps: &str) -> FetchError {
    match e {
        FetchError::Download { file, failures, .. } => {
            FetchError::Download { file, failures, manual: steps.to_string() }
        }
        FetchError::Archive { path, url, reason, .. } => {
            FetchError::Archive { path, url, reason, manual: steps.to_string() }
        }
        other => other,
    }
}
