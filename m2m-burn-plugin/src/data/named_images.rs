//! A handful of labelled images with names, for diagnostics (`m2m translate`): a folder
//! of PNG files labelled by the last `_L` of their names (`cifar10_00_3.png`: label 3),
//! a CIFAR binary batch file, or an IDX image/label pair.

use std::path::Path;

use super::cifar::{self, CifarKind};
use super::images::{channel_major, Color};
use super::{idx, DataError, DatasetName, ImageSet};

/// Images with a name each (the file name, or `file#index`).
#[derive(Debug, Clone)]
pub struct NamedImages {
    /// The images and their labels.
    pub set: ImageSet,
    /// One name per image, in the order of `set`: the PNG file name, or `file#index` for
    /// images read from a CIFAR or IDX file.
    pub names: Vec<String>,
}

impl NamedImages {
    /// Reads `images` for `dataset`: a folder of PNGs (only names starting with `prefix`
    /// when given), an IDX image file when `labels` names its label file, else a CIFAR
    /// binary batch file.
    pub fn read(
        dataset: DatasetName,
        images: &Path,
        labels: Option<&Path>,
        prefix: Option<&str>,
    ) -> Result<Self, DataError> {
        let (c, h, w) = dataset.image_shape();
        let classes = dataset.num_classes();
        if images.is_dir() {
            return read_png_folder(images, prefix, (c, h, w), classes);
        }
        let set = match (labels, dataset) {
            (Some(l), _) => idx::read_pair(images, l, classes, "an IDX image file and its label file")?,
            (None, DatasetName::Cifar10 | DatasetName::Cifar100) => {
                let kind = if dataset == DatasetName::Cifar10 { CifarKind::Cifar10 } else { CifarKind::Cifar100 };
                let bytes = std::fs::read(images).map_err(|cause| DataError::Io {
                    path: images.to_path_buf(),
                    cause,
                    hint: "expected a CIFAR binary batch file (e.g. test_batch.bin)".into(),
                })?;
                let (pixels, y) = cifar::parse(images, kind, &bytes)?;
                ImageSet::new(3, 32, 32, classes, pixels, y)?
            }
            (None, _) => {
                return Err(DataError::Invalid(format!(
                    "{}: IDX images need their label file (--labels)",
                    images.display()
                )))
            }
        };
        if (set.channels, set.height, set.width) != (c, h, w) {
            return Err(DataError::corrupt(
                images,
                format!("images are {}x{}x{}, {dataset:?} images are {c}x{h}x{w}", set.channels, set.height, set.width),
            ));
        }
        let file = images.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let names = (0..set.len()).map(|i| format!("{file}#{i}")).collect();
        Ok(Self { set, names })
    }

    /// The first `n` images.
    pub fn take(self, n: usize) -> Self {
        let keep: Vec<usize> = (0..n.min(self.set.len())).collect();
        Self { set: self.set.select(&keep), names: self.names.into_iter().take(n).collect() }
    }
}

/// The label of `name.png` from its last `_L`.
fn label_of(stem: &str) -> Option<usize> {
    stem.rsplit_once('_').and_then(|(_, l)| l.parse().ok())
}

fn read_png_folder(
    dir: &Path,
    prefix: Option<&str>,
    (c, h, w): (usize, usize, usize),
    classes: usize,
) -> Result<NamedImages, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|cause| DataError::Io {
        path: dir.to_path_buf(),
        cause,
        hint: "expected a folder of PNG files named like name_L.png (L = class label)".into(),
    })?;
    let mut files: Vec<std::path::PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .filter(|p| prefix.is_none_or(|pre| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(pre))))
        .collect();
    files.sort();
    if files.is_empty() {
        let which = prefix.map(|p| format!(" starting with {p:?}")).unwrap_or_default();
        return Err(DataError::Invalid(format!("{}: no PNG files{which}", dir.display())));
    }
    let mut pixels = Vec::with_capacity(files.len() * c * h * w);
    let mut labels = Vec::with_capacity(files.len());
    let mut names = Vec::with_capacity(files.len());
    for path in files {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let label = label_of(&stem).ok_or_else(|| {
            DataError::corrupt(&path, "the name does not end in _L with L the class label (e.g. cat_3.png)")
        })?;
        if label >= classes {
            return Err(DataError::corrupt(&path, format!("label {label} is out of range for {classes} classes")));
        }
        let img =
            image::open(&path).map_err(|e| DataError::corrupt(&path, format!("not a readable PNG image: {e}")))?;
        if (img.width() as usize, img.height() as usize) != (w, h) {
            return Err(DataError::corrupt(
                &path,
                format!("the image is {}x{}, the data set's images are {w}x{h}", img.width(), img.height()),
            ));
        }
        pixels.extend(channel_major(&img, if c == 1 { Color::Grey } else { Color::Rgb }));
        labels.push(label);
        names.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    }
    Ok(NamedImages { set: ImageSet::new(c, h, w, classes, pixels, labels)?, names })
}
