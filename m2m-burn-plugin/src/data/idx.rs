//! Reader for the IDX format of MNIST and Fashion-MNIST, gzipped or raw.

use std::io::Read;
use std::path::Path;

use super::{DataError, ImageSet};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads a whole file, transparently gunzipping it when it starts with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path, hint: &str) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
        hint: hint.to_string(),
    })?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::corrupt(path, format!("gzip stream is damaged: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Parses an IDX image file (`u8`, 3 dimensions): returns (count, rows, cols, pixels).
pub fn parse_images(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize, Vec<u8>), DataError> {
    if bytes.len() < 16 {
        return Err(DataError::corrupt(
            path,
            format!("{} bytes is too short for an IDX image header (16)", bytes.len()),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(DataError::corrupt(
            path,
            format!("magic number {magic:#010x}, expected {IMAGES_MAGIC:#010x} (IDX u8 images)"),
        ));
    }
    let (n, rows, cols) = (be_u32(bytes, 4) as usize, be_u32(bytes, 8) as usize, be_u32(bytes, 12) as usize);
    let expected = 16 + n * rows * cols;
    if bytes.len() != expected {
        return Err(DataError::corrupt(
            path,
            format!(
                "header announces {n} images of {rows}x{cols} ({expected} bytes) but the file has {} bytes",
                bytes.len()
            ),
        ));
    }
    Ok((n, rows, cols, bytes[16..].to_vec()))
}

/// Parses an IDX label file (`u8`, 1 dimension).
pub fn parse_labels(path: &Path, bytes: &[u8], num_classes: usize) -> Result<Vec<usize>, DataError> {
    if bytes.len() < 8 {
        return Err(DataError::corrupt(
            path,
            format!("{} bytes is too short for an IDX label header (8)", bytes.len()),
        ));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(DataError::corrupt(
            path,
            format!("magic number {magic:#010x}, expected {LABELS_MAGIC:#010x} (IDX u8 labels)"),
        ));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(DataError::corrupt(
            path,
            format!("header announces {n} labels but the file holds {}", bytes.len() - 8),
        ));
    }
    let labels: Vec<usize> = bytes[8..].iter().map(|&b| b as usize).collect();
    if let Some(pos) = labels.iter().position(|&y| y >= num_classes) {
        return Err(DataError::corrupt(
            path,
            format!("label {} at position {pos} is out of range for {num_classes} classes", labels[pos]),
        ));
    }
    Ok(labels)
}

/// Reads an image file and its label file into one [`ImageSet`] (1 channel).
pub fn read_pair(images: &Path, labels: &Path, num_classes: usize, hint: &str) -> Result<ImageSet, DataError> {
    let (n, rows, cols, pixels) = parse_images(images, &read_maybe_gz(images, hint)?)?;
    let y = parse_labels(labels, &read_maybe_gz(labels, hint)?, num_classes)?;
    if y.len() != n {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            n_images: n,
            labels: labels.to_path_buf(),
            n_labels: y.len(),
        });
    }
    ImageSet::new(1, rows, cols, num_classes, pixels, y)
}

/// Encodes images and labels in the IDX format (used by tests and tools that write data).
pub fn encode(rows: usize, cols: usize, pixels: &[u8], labels: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let n = labels.len();
    let mut img = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, n as u32, rows as u32, cols as u32] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    img.extend_from_slice(pixels);
    let mut lab = Vec::with_capacity(8 + n);
    for v in [LABELS_MAGIC, n as u32] {
        lab.extend_from_slice(&v.to_be_bytes());
    }
    lab.extend_from_slice(labels);
    (img, lab)
}
