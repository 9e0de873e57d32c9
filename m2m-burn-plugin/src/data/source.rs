//! Where a run's images come from (a built-in data set or the user's image files), and
//! what a model needs to know about them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::images::ImageFiles;
use super::{DataError, DatasetName, ImageSet};

/// The images of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// Fashion-MNIST, MNIST, CIFAR-10 or CIFAR-100 from their official files.
    Builtin(DatasetName),
    /// Image files in folders or split files (`dataset.images`).
    Images(Box<ImageFiles>),
}

/// The splits as read from the files, before subsetting.
#[derive(Debug, Clone)]
pub struct SourceSplits {
    /// The whole training split.
    pub train: ImageSet,
    /// A validation split of its own (image files with a `val` folder or file).
    pub val: Option<ImageSet>,
    /// The whole test split.
    pub test: ImageSet,
    /// Class names by label.
    pub class_names: Vec<String>,
}

impl DataSource {
    /// The name in run names, logs and reports (`FashionMnist`, or `dataset.images.name`).
    pub fn label(&self) -> String {
        match self {
            DataSource::Builtin(name) => format!("{name:?}"),
            DataSource::Images(files) => files.name.clone(),
        }
    }

    /// (channels, height, width), known before any file is read.
    pub fn image_shape(&self) -> (usize, usize, usize) {
        match self {
            DataSource::Builtin(name) => name.image_shape(),
            DataSource::Images(f) => (f.color.channels(), f.size.height, f.size.width),
        }
    }

    /// The class names by label when the recipe alone fixes them (not for image files
    /// whose classes are the sorted folder names or labels).
    pub fn known_class_names(&self) -> Option<Vec<String>> {
        match self {
            DataSource::Builtin(name) => Some(name.class_names()),
            DataSource::Images(f) => match &f.classes {
                super::images::ClassList::Listed(names) => Some(names.clone()),
                super::images::ClassList::Sorted => None,
            },
        }
    }

    /// Finds the files (built-in sets look in the usual places; image files are where
    /// `dataset.path` says).
    pub fn locate(&self, path: Option<&Path>) -> Result<PathBuf, DataError> {
        match self {
            DataSource::Builtin(name) => name.locate(path),
            DataSource::Images(f) => path.map(Path::to_path_buf).ok_or_else(|| DataError::NotFound {
                dataset: f.name.clone(),
                searched: "nowhere".into(),
                hint: "image-file data sets need `dataset.path`: the folder that holds the images".into(),
            }),
        }
    }

    /// Reads every split from a located folder.
    pub fn read(&self, dir: &Path) -> Result<SourceSplits, DataError> {
        match self {
            DataSource::Builtin(name) => {
                let (train, test) = name.read(dir)?;
                Ok(SourceSplits { train, val: None, test, class_names: name.class_names() })
            }
            DataSource::Images(f) => f.read(dir),
        }
    }

    /// The built-in set's published normalisation, if this is one.
    pub fn standard_normalization(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        match self {
            DataSource::Builtin(name) => Some(name.normalization()),
            DataSource::Images(_) => None,
        }
    }
}

/// How inputs are normalised (per channel `(x - mean) / std`, on pixels in [0, 1]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Normalization {
    /// The built-in data set's published values (the default for built-in sets).
    Standard,
    /// Mean and standard deviation of the run's training images (the long-tailed subset),
    /// computed when the data is prepared and stored in the run's `data-manifest.json`.
    FromTrain,
    /// These values, one per channel.
    Given {
        /// Per-channel mean, on pixels in [0, 1].
        mean: Vec<f32>,
        /// Per-channel standard deviation, on pixels in [0, 1]; must be positive.
        std: Vec<f32>,
    },
}

/// What a model needs to know about its data; written into `data-manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFormat {
    /// Channels per image (1 greyscale, 3 RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Class names by label (their number is the number of classes).
    pub class_names: Vec<String>,
    /// Per-channel mean the model subtracts, on pixels in [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation the model divides by, on pixels in [0, 1].
    pub std: Vec<f32>,
}

impl DataFormat {
    /// Number of classes (the length of `class_names`).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
}

impl DatasetName {
    /// The format of a built-in set with its published normalisation.
    pub fn format(self) -> DataFormat {
        let (channels, height, width) = self.image_shape();
        let (mean, std) = self.normalization();
        DataFormat { channels, height, width, class_names: self.class_names(), mean, std }
    }

    /// The built-in set a label names (`FashionMnist`, ...), if any.
    pub fn from_label(label: &str) -> Option<Self> {
        [DatasetName::FashionMnist, DatasetName::Mnist, DatasetName::Cifar10, DatasetName::Cifar100]
            .into_iter()
            .find(|d| format!("{d:?}") == label)
    }
}

/// Per-channel mean and (population) standard deviation of `set`'s pixels in [0, 1].
pub fn channel_statistics(set: &ImageSet) -> (Vec<f32>, Vec<f32>) {
    let plane = set.height * set.width;
    let mut sum = vec![0f64; set.channels];
    let mut sum_sq = vec![0f64; set.channels];
    for i in 0..set.len() {
        for (c, channel) in set.image(i).chunks_exact(plane).enumerate() {
            let (s, q) = channel.iter().fold((0u64, 0u64), |(s, q), &p| (s + p as u64, q + (p as u64) * (p as u64)));
            sum[c] += s as f64;
            sum_sq[c] += q as f64;
        }
    }
    let n = (set.len() * plane).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n / 255.0).collect();
    let std = sum_sq.iter().zip(&mean).map(|(q, m)| ((q / n / 65025.0 - m * m).max(0.0)).sqrt() as f32).collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}
