//! The decoded-image cache: one compact file per split (a header, the labels, the bytes),
//! keyed by the settings and every listed file's path, label, size and modification time,
//! so that an edited, added or removed image decodes the split again. A damaged or
//! unwritable cache only costs a decode, never a run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::SplitListing;
use super::{decode, ImageFiles};
use crate::data::DataError;

/// Where decoded splits are cached.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ImageCache {
    /// `$M2M_CACHE/images`, else `$XDG_CACHE_HOME/m2m/images`, else `~/.cache/m2m/images`.
    #[default]
    Auto,
    /// Decode on every run.
    Off,
    /// This folder.
    Folder(PathBuf),
}

/// The folder [`ImageCache::Auto`] uses, when the environment names one.
pub fn default_cache_dir() -> Option<PathBuf> {
    crate::fs::cache_dir().map(|d| d.join("images"))
}

const MAGIC: &[u8; 8] = b"M2MIMGS1";

/// The split's pixels (in listing order): from the cache when it holds this exact
/// listing, else decoded (and cached).
pub fn decode_cached(set: &ImageFiles, split: &SplitListing) -> Result<Vec<u8>, DataError> {
    let what = format!("{} ({} split, {})", set.name, split.split, split.source.display());
    let dir = match &set.cache {
        ImageCache::Off => None,
        ImageCache::Folder(d) => Some(d.clone()),
        ImageCache::Auto => default_cache_dir(),
    };
    let file = dir.map(|d| d.join(format!("{}-{}-{:016x}.bin", sanitised(&set.name), split.split, key(set, split))));
    if let Some(f) = file.as_ref().filter(|f| f.is_file()) {
        match read(f, set, split) {
            Ok(pixels) => {
                tracing::info!("{what}: {} images from the cache {}", split.files.len(), f.display());
                return Ok(pixels);
            }
            Err(reason) => {
                tracing::warn!("{}: unusable image cache ({reason}); decoding the images again", f.display())
            }
        }
    }
    let pixels = decode::decode_all(&what, &split.files, set.color, set.size, set.fit)?;
    if let Some(f) = file {
        if let Err(e) = crate::fs::write_atomic(&f, &encode(set, split, &pixels)) {
            tracing::warn!("{}: cannot write the image cache ({e}); the next run decodes again", f.display());
        }
    }
    Ok(pixels)
}

fn sanitised(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_".contains(c) { c } else { '_' }).collect()
}

/// Everything that changes the decoded bytes: settings, and each file's path, label,
/// length and modification time.
fn key(set: &ImageFiles, split: &SplitListing) -> u64 {
    let mut text = format!("v1 {:?} {:?} {:?}\n", set.color, set.size, set.fit);
    for (path, label) in split.files.iter().zip(&split.labels) {
        let meta = std::fs::metadata(path).ok();
        let len = meta.as_ref().map_or(0, |m| m.len());
        let modified = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        text.push_str(&format!("{}\t{label}\t{len}\t{modified}\n", path.display()));
    }
    crate::fingerprint::fnv1a64(text.as_bytes())
}

fn header(set: &ImageFiles, n: usize) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    for v in [set.color.channels(), set.size.height, set.size.width, n] {
        h.extend((v as u64).to_le_bytes());
    }
    h
}

fn encode(set: &ImageFiles, split: &SplitListing, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = header(set, split.labels.len());
    for &y in &split.labels {
        bytes.extend((y as u32).to_le_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

fn read(file: &Path, set: &ImageFiles, split: &SplitListing) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(file).map_err(|e| e.to_string())?;
    let n = split.labels.len();
    let head = header(set, n);
    let per = set.color.channels() * set.size.height * set.size.width;
    let expected = head.len() + 4 * n + per * n;
    if bytes.len() != expected || bytes[..head.len()] != head[..] {
        return Err(format!("{} bytes, expected {expected} with this header", bytes.len()));
    }
    let labels = &bytes[head.len()..head.len() + 4 * n];
    let same = labels
        .chunks_exact(4)
        .zip(&split.labels)
        .all(|(b, &y)| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize == y);
    if !same {
        return Err("its labels differ from the listing".into());
    }
    Ok(bytes[head.len() + 4 * n..].to_vec())
}
