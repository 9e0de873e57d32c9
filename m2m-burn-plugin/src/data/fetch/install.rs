//! Turning verified downloads into the data set's folder: built in a staging folder next
//! to it, read back with the data set's own reader, then renamed into place in one step.
//! An existing folder is never written into or replaced.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use super::catalog::{Catalog, Layout};
use super::FetchError;

/// Builds `catalog`'s folder from `files` (in catalog order) inside `work`, checks that
/// the data set reads, and moves it to `target`.
pub(super) fn install(catalog: &Catalog, files: &[PathBuf], work: &Path, target: &Path) -> Result<(), FetchError> {
    let staging =
        tempfile::Builder::new().prefix("extract-").tempdir_in(work).map_err(|e| FetchError::local(work, e))?;
    let folder = target.file_name().map(PathBuf::from).unwrap_or_default();
    let built = staging.path().join(&folder);
    match catalog.layout() {
        Layout::Tarball => {
            for (archive, path) in catalog.archives.iter().zip(files) {
                unpack(path, staging.path(), &folder).map_err(|reason| FetchError::Archive {
                    path: path.clone(),
                    url: archive.urls[0].clone(),
                    reason,
                    manual: String::new(),
                })?;
            }
        }
        Layout::GzipFiles => {
            std::fs::create_dir(&built).map_err(|e| FetchError::local(&built, e))?;
            for (archive, path) in catalog.archives.iter().zip(files) {
                let to = built.join(&archive.file);
                std::fs::copy(path, &to).map_err(|e| FetchError::local(&to, e))?;
            }
        }
    }
    // The data set's reader over every file: a short or corrupt member stops here, before
    // anything is in place.
    catalog.dataset.read(&built).map_err(|e| FetchError::Archive {
        path: files[0].clone(),
        url: catalog.archives[0].urls[0].clone(),
        reason: format!("the unpacked files do not read: {e}"),
        manual: String::new(),
    })?;
    match std::fs::rename(&built, target) {
        Ok(()) => Ok(()),
        Err(_) if target.exists() => Err(FetchError::Occupied { path: target.to_path_buf() }),
        Err(e) => Err(FetchError::local(target, e)),
    }
}

/// Unpacks a gzipped tar archive into `into`, accepting only regular files and folders
/// under `folder` (no links, no absolute paths, no `..`).
fn unpack(archive: &Path, into: &Path, folder: &Path) -> Result<(), String> {
    let file = File::open(archive).map_err(|e| e.to_string())?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = tar.entries().map_err(|e| format!("not a tar archive: {e}"))?;
    let mut any = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("the archive ends early or is corrupt: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        let inside = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside || !path.starts_with(folder) {
            return Err(format!(
                "unexpected member {} (expected everything under {}/)",
                path.display(),
                folder.display()
            ));
        }
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(format!("unexpected member {} of type {kind:?}", path.display()));
        }
        entry
            .unpack_in(into)
            .map_err(|e| format!("the archive ends early or is corrupt at {}: {e}", path.display()))?;
        any = true;
    }
    if !any {
        return Err("the archive is empty".into());
    }
    Ok(())
}
