//! Listing the image files of each split and their labels, before anything is decoded.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ImageLayout;
use crate::data::DataError;

/// The classes of a data set, in label order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ClassList {
    /// Class folders: the training folder's subfolder names, sorted. Split files: with
    /// integer labels the classes `0..=max`, otherwise the distinct names, sorted.
    Sorted,
    /// These names in label order: class folders must be named so; split-file labels are
    /// one of these names or an index into the list.
    Listed(Vec<String>),
}

/// The files of one split with their labels, in a fixed order (class, then file name for
/// folders; line order for split files).
#[derive(Debug, Clone)]
pub struct SplitListing {
    /// `train`, `val` or `test`.
    pub split: &'static str,
    /// The folder or split file the listing came from (named in errors).
    pub source: PathBuf,
    /// The image files, resolved against the root.
    pub files: Vec<PathBuf>,
    /// The label of each file, in the order of `files`.
    pub labels: Vec<usize>,
}

/// Every split of an image-file data set, listed, with the class names.
#[derive(Debug, Clone)]
pub struct Listing {
    /// The training split.
    pub train: SplitListing,
    /// The validation split, if the layout names one.
    pub val: Option<SplitListing>,
    /// The test split.
    pub test: SplitListing,
    /// Class names by label.
    pub class_names: Vec<String>,
}

const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

fn is_image(path: &Path) -> bool {
    path.extension().is_some_and(|x| IMAGE_EXTENSIONS.iter().any(|e| x.eq_ignore_ascii_case(e)))
}

fn io(path: &Path, hint: &str) -> impl FnOnce(std::io::Error) -> DataError {
    let path = path.to_path_buf();
    let hint = hint.to_string();
    move |cause| DataError::Io { path, cause, hint }
}

/// Lists the files and labels of every split under `root`. Errors on a missing or empty
/// folder or split file, a class without images, a folder or label outside the class list,
/// or an image outside a class folder.
pub fn list(root: &Path, layout: &ImageLayout, classes: &ClassList) -> Result<Listing, DataError> {
    match layout {
        ImageLayout::ClassFolders { train, test, val } => {
            let train_dir = root.join(train);
            let names = match classes {
                ClassList::Listed(names) => names.clone(),
                ClassList::Sorted => {
                    let names = subfolders(&train_dir)?;
                    if names.is_empty() {
                        return Err(DataError::Invalid(format!(
                            "{}: no class folders (expected one subfolder of images per class)",
                            train_dir.display()
                        )));
                    }
                    names
                }
            };
            let listing = |split, dir: &Path| folder_split(split, &root.join(dir), &names);
            Ok(Listing {
                train: listing("train", train)?,
                val: val.as_deref().map(|v| listing("val", v)).transpose()?,
                test: listing("test", test)?,
                class_names: names,
            })
        }
        ImageLayout::SplitFiles { train, test, val, strip_prefix } => {
            let read = |split, file: &Path| read_split_file(split, root, &root.join(file), strip_prefix.as_deref());
            let (train, val, test) =
                (read("train", train)?, val.as_deref().map(|v| read("val", v)).transpose()?, read("test", test)?);
            let names = match classes {
                ClassList::Listed(names) => names.clone(),
                ClassList::Sorted => sorted_labels(&train),
            };
            let resolve = |s: RawSplit| s.resolve(&names);
            Ok(Listing {
                train: resolve(train)?,
                val: val.map(resolve).transpose()?,
                test: resolve(test)?,
                class_names: names,
            })
        }
    }
}

/// Subfolder names of `dir`, sorted (hidden ones skipped).
fn subfolders(dir: &Path) -> Result<Vec<String>, DataError> {
    let hint = "expected a folder with one subfolder of images per class";
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir, hint))? {
        let entry = entry.map_err(io(dir, hint))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// The images of one split under `dir/<class>/`, every class present and non-empty, no
/// folder outside the class list, no image outside a class folder.
fn folder_split(split: &'static str, dir: &Path, classes: &[String]) -> Result<SplitListing, DataError> {
    let hint = "expected a folder with one subfolder of images per class";
    let mut stray = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir, hint))? {
        let path = entry.map_err(io(dir, hint))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if !classes.contains(&name) {
                return Err(DataError::Invalid(format!(
                    "{}: folder `{name}` is not one of the {} classes {} (dataset.images.classes, or the training folder's subfolders)",
                    dir.display(),
                    classes.len(),
                    short_list(classes)
                )));
            }
        } else if is_image(&path) {
            stray.push(name);
        }
    }
    if !stray.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: {} image(s) outside a class folder (e.g. {}); put each image in the subfolder of its class",
            dir.display(),
            stray.len(),
            stray[0]
        )));
    }
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        if !class_dir.is_dir() {
            return Err(DataError::Invalid(format!(
                "class `{class}` has no folder {} ({split} split)",
                class_dir.display()
            )));
        }
        let mut images: Vec<PathBuf> = std::fs::read_dir(&class_dir)
            .map_err(io(&class_dir, hint))?
            .map(|e| e.map(|e| e.path()).map_err(io(&class_dir, hint)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|p| p.is_file() && is_image(p))
            .collect();
        if images.is_empty() {
            return Err(DataError::Invalid(format!(
                "class `{class}` has no images in {} ({split} split; PNG or JPEG files: .png, .jpg, .jpeg)",
                class_dir.display()
            )));
        }
        images.sort();
        labels.extend(std::iter::repeat_n(label, images.len()));
        files.extend(images);
    }
    Ok(SplitListing { split, source: dir.to_path_buf(), files, labels })
}

/// A split file as read: paths resolved, labels still as written.
struct RawSplit {
    split: &'static str,
    source: PathBuf,
    files: Vec<PathBuf>,
    /// (label as written, line number).
    labels: Vec<(String, usize)>,
}

fn read_split_file(
    split: &'static str,
    root: &Path,
    file: &Path,
    strip_prefix: Option<&str>,
) -> Result<RawSplit, DataError> {
    let text = std::fs::read_to_string(file).map_err(io(file, "expected a split file of `path label` lines"))?;
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((path, label)) = line.rsplit_once(char::is_whitespace) else {
            return Err(DataError::corrupt(file, format!("line {}: expected `path label`, got `{line}`", i + 1)));
        };
        let path = path.trim();
        let resolved = match strip_prefix.and_then(|p| path.strip_prefix(p)) {
            Some(rest) => root.join(rest.trim_start_matches(['/', '\\'])),
            None => root.join(path), // an absolute listed path stays absolute
        };
        files.push(resolved);
        labels.push((label.to_string(), i + 1));
    }
    if files.is_empty() {
        return Err(DataError::corrupt(file, "lists no images"));
    }
    Ok(RawSplit { split, source: file.to_path_buf(), files, labels })
}

/// The classes of a training split file: `0..=max` when every label is an integer, else
/// the distinct names, sorted.
fn sorted_labels(train: &RawSplit) -> Vec<String> {
    let numbers: Option<Vec<usize>> = train.labels.iter().map(|(l, _)| l.parse().ok()).collect();
    match numbers {
        Some(n) => (0..=n.into_iter().max().unwrap_or(0)).map(|k| k.to_string()).collect(),
        None => {
            let mut names: Vec<String> = train.labels.iter().map(|(l, _)| l.clone()).collect();
            names.sort();
            names.dedup();
            names
        }
    }
}

impl RawSplit {
    fn resolve(self, classes: &[String]) -> Result<SplitListing, DataError> {
        let mut labels = Vec::with_capacity(self.labels.len());
        let mut count = vec![0usize; classes.len()];
        for (label, line) in &self.labels {
            let k = classes
                .iter()
                .position(|c| c == label)
                .or_else(|| label.parse::<usize>().ok().filter(|&k| k < classes.len()))
                .ok_or_else(|| {
                    DataError::corrupt(
                        &self.source,
                        format!(
                            "line {line}: label `{label}` is not one of the {} classes {}",
                            classes.len(),
                            short_list(classes)
                        ),
                    )
                })?;
            count[k] += 1;
            labels.push(k);
        }
        if let Some(k) = count.iter().position(|&n| n == 0) {
            return Err(DataError::Invalid(format!(
                "{}: class {k} (`{}`) has no images in the {} split",
                self.source.display(),
                classes[k],
                self.split
            )));
        }
        Ok(SplitListing { split: self.split, source: self.source, files: self.files, labels })
    }
}

fn short_list(names: &[String]) -> String {
    if names.len() <= 12 {
        format!("{names:?}")
    } else {
        format!("[{}, ... {}]", names[..10].join(", "), names[names.len() - 1])
    }
}
