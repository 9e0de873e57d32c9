//! Writing an [`ImageSet`] as PNG files in either layout (`m2m export-images`): how users
//! see the layouts on real data, and how the tests make an image folder from Fashion-MNIST.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::data::{DataError, ImageSet};

/// Class folder names that sort in label order: `03-Dress` (path separators replaced).
pub fn class_folder_names(class_names: &[String]) -> Vec<String> {
    let width = (class_names.len().max(2) - 1).to_string().len();
    class_names.iter().enumerate().map(|(k, name)| format!("{k:0width$}-{}", name.replace(['/', '\\'], "-"))).collect()
}

/// `dir/<split>/<class folder>/<index>.png` for each `(split, set)`. Returns the number
/// of files written.
pub fn export_class_folders(
    dir: &Path,
    splits: &[(&str, &ImageSet)],
    class_names: &[String],
) -> Result<usize, DataError> {
    let folders = class_folder_names(class_names);
    let mut written = 0;
    for (split, set) in splits {
        let paths: Vec<PathBuf> =
            (0..set.len()).map(|i| dir.join(split).join(&folders[set.labels[i]]).join(format!("{i:05}.png"))).collect();
        write_all(set, &paths)?;
        written += paths.len();
    }
    Ok(written)
}

/// `dir/images/<split>/<index>.png` and `dir/<split>.txt` with `images/<split>/<index>.png
/// <label>` lines. Returns the number of images written.
pub fn export_split_files(dir: &Path, splits: &[(&str, &ImageSet)]) -> Result<usize, DataError> {
    let mut written = 0;
    for (split, set) in splits {
        let rel: Vec<String> = (0..set.len()).map(|i| format!("images/{split}/{i:05}.png")).collect();
        let paths: Vec<PathBuf> = rel.iter().map(|r| dir.join(r)).collect();
        write_all(set, &paths)?;
        let list: String = rel.iter().zip(&set.labels).map(|(r, y)| format!("{r} {y}\n")).collect();
        let file = dir.join(format!("{split}.txt"));
        crate::fs::write_atomic(&file, list.as_bytes()).map_err(|cause| DataError::Write { path: file, cause })?;
        written += paths.len();
    }
    Ok(written)
}

fn write_all(set: &ImageSet, paths: &[PathBuf]) -> Result<(), DataError> {
    paths.par_iter().enumerate().try_for_each(|(i, path)| write_png(set, i, path))
}

fn write_png(set: &ImageSet, i: usize, path: &Path) -> Result<(), DataError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|cause| DataError::Write { path: parent.to_path_buf(), cause })?;
    }
    let (w, h) = (set.width as u32, set.height as u32);
    let pixels = set.image(i);
    let saved = match set.channels {
        1 => image::GrayImage::from_raw(w, h, pixels.to_vec()).map(|img| img.save(path)),
        3 => {
            let plane = set.height * set.width;
            let interleaved: Vec<u8> =
                (0..plane).flat_map(|p| [pixels[p], pixels[plane + p], pixels[2 * plane + p]]).collect();
            image::RgbImage::from_raw(w, h, interleaved).map(|img| img.save(path))
        }
        c => return Err(DataError::Invalid(format!("cannot write {c}-channel images as PNG"))),
    };
    match saved {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(DataError::Invalid(format!("{}: cannot write PNG: {e}", path.display()))),
        None => Err(DataError::Invalid(format!("{}: image {i} has the wrong number of bytes", path.display()))),
    }
}
