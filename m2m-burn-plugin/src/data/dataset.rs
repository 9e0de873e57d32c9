//! The data sets we know, where their files live and how to read them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cifar::{self, CifarKind};
use super::{idx, DataError, ImageSet};

/// A built-in data set, read from its official files (recipe field `dataset.name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DatasetName {
    /// Fashion-MNIST: 10 classes of 28×28 greyscale images, IDX files.
    FashionMnist,
    /// MNIST: 10 digit classes of 28×28 greyscale images, IDX files.
    Mnist,
    /// CIFAR-10: 10 classes of 32×32 RGB images, binary version.
    Cifar10,
    /// CIFAR-100: 100 classes (fine labels) of 32×32 RGB images, binary version.
    Cifar100,
}

const IDX_FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

impl DatasetName {
    /// Number of classes (100 for CIFAR-100, else 10).
    pub fn num_classes(self) -> usize {
        match self {
            DatasetName::Cifar100 => 100,
            _ => 10,
        }
    }

    /// (channels, height, width).
    pub fn image_shape(self) -> (usize, usize, usize) {
        match self {
            DatasetName::FashionMnist | DatasetName::Mnist => (1, 28, 28),
            DatasetName::Cifar10 | DatasetName::Cifar100 => (3, 32, 32),
        }
    }

    /// Per-channel mean and standard deviation used by the model's input normalisation
    /// (CIFAR values as in the M2m code, algorithm.md §5.2).
    pub fn normalization(self) -> (Vec<f32>, Vec<f32>) {
        match self {
            DatasetName::FashionMnist => (vec![0.2860], vec![0.3530]),
            DatasetName::Mnist => (vec![0.1307], vec![0.3081]),
            DatasetName::Cifar10 => (vec![0.4914, 0.4822, 0.4465], vec![0.2023, 0.1994, 0.2010]),
            DatasetName::Cifar100 => (vec![0.5071, 0.4867, 0.4408], vec![0.2675, 0.2565, 0.2761]),
        }
    }

    /// Human-readable class names, by label.
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            DatasetName::FashionMnist => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
            DatasetName::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetName::Cifar10 => {
                &["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
            }
            DatasetName::Cifar100 => return (0..100).map(|k| format!("class {k}")).collect(),
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Images per class of the official training split, as published.
    pub fn train_class_counts(self) -> Vec<usize> {
        match self {
            DatasetName::FashionMnist => vec![6000; 10],
            DatasetName::Mnist => vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
            DatasetName::Cifar10 => vec![5000; 10],
            DatasetName::Cifar100 => vec![500; 100],
        }
    }

    /// Folder names tried under `$M2M_DATA` and the other roots.
    fn folder_names(self) -> &'static [&'static str] {
        match self {
            DatasetName::FashionMnist => &["fashion-mnist", "FashionMNIST", "fashion_mnist"],
            DatasetName::Mnist => &["mnist", "MNIST"],
            DatasetName::Cifar10 => &["cifar-10-batches-bin", "cifar10", "cifar-10"],
            DatasetName::Cifar100 => &["cifar-100-binary", "cifar100", "cifar-100"],
        }
    }

    /// The folder `m2m data fetch` installs this data set as (the first name
    /// [`DatasetName::locate`] tries under each root).
    pub(crate) fn fetch_folder(self) -> &'static str {
        self.folder_names()[0]
    }

    /// The name `m2m data fetch` takes for this data set.
    pub fn fetch_name(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
        }
    }

    /// How to obtain the files: `m2m data fetch`, or by hand.
    fn hint(self) -> String {
        let into = super::fetch::fetch_root().map_or("$M2M_DATA".to_string(), |r| r.display().to_string());
        format!("`m2m data fetch {}` downloads it into {into}; or by hand: {}", self.fetch_name(), self.manual_hint())
    }

    fn manual_hint(self) -> &'static str {
        match self {
            DatasetName::FashionMnist => "On Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (installs /usr/share/datasets/fashion-mnist); or put the four IDX files (gzipped or not) in a folder and set `dataset.path` or $M2M_DATA",
            DatasetName::Mnist => "Put the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...) in a folder and set `dataset.path` or $M2M_DATA",
            DatasetName::Cifar10 => CifarKind::Cifar10.hint(),
            DatasetName::Cifar100 => CifarKind::Cifar100.hint(),
        }
    }

    /// Whether `dir` holds this data set's files (by name; the reader checks contents).
    pub(crate) fn has_files(self, dir: &Path) -> bool {
        match self {
            DatasetName::FashionMnist | DatasetName::Mnist => IDX_FILES.iter().all(|f| idx_file(dir, f).is_some()),
            DatasetName::Cifar10 => dir.join("data_batch_1.bin").is_file(),
            DatasetName::Cifar100 => dir.join("train.bin").is_file(),
        }
    }

    /// Finds the folder with this data set's files: the recipe's path, then `$M2M_DATA`
    /// (itself or a known sub-folder), then well-known locations.
    pub fn locate(self, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = explicit {
            // An explicit path is authoritative: never fall back silently to another copy.
            if self.has_files(p) {
                return Ok(p.to_path_buf());
            }
            for name in self.folder_names() {
                if self.has_files(&p.join(name)) {
                    return Ok(p.join(name));
                }
            }
            return Err(DataError::NotFound {
                dataset: format!("{self:?}"),
                searched: format!("dataset.path = {}", p.display()),
                hint: self.hint(),
            });
        }
        let mut roots: Vec<PathBuf> = Vec::new();
        if let Some(env) = std::env::var_os("M2M_DATA") {
            roots.push(PathBuf::from(env));
        }
        // Where `m2m data fetch` installs data sets when $M2M_DATA is not set.
        roots.extend(super::fetch::fetch_root().filter(|r| !roots.contains(r)));
        roots.push(PathBuf::from("/usr/share/datasets"));
        if let Some(home) = std::env::var_os("HOME") {
            roots.push(PathBuf::from(home).join("data"));
        }
        roots.push(PathBuf::from("data"));
        for root in roots {
            candidates.push(root.clone());
            candidates.extend(self.folder_names().iter().map(|n| root.join(n)));
        }
        for c in &candidates {
            if self.has_files(c) {
                return Ok(c.clone());
            }
        }
        Err(DataError::NotFound {
            dataset: format!("{self:?}"),
            searched: candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", "),
            hint: self.hint(),
        })
    }

    /// Reads (train, test) from a located folder.
    pub fn read(self, dir: &Path) -> Result<(ImageSet, ImageSet), DataError> {
        match self {
            DatasetName::FashionMnist | DatasetName::Mnist => {
                let path = |name: &str| idx_file(dir, name).unwrap_or_else(|| dir.join(name));
                let hint = self.manual_hint();
                let train = idx::read_pair(&path(IDX_FILES[0]), &path(IDX_FILES[1]), 10, hint)?;
                let test = idx::read_pair(&path(IDX_FILES[2]), &path(IDX_FILES[3]), 10, hint)?;
                Ok((train, test))
            }
            DatasetName::Cifar10 | DatasetName::Cifar100 => {
                let kind = if self == DatasetName::Cifar10 { CifarKind::Cifar10 } else { CifarKind::Cifar100 };
                Ok((cifar::read_split(dir, kind, true)?, cifar::read_split(dir, kind, false)?))
            }
        }
    }
}

/// `name.gz` or `name` in `dir`, whichever exists (gzipped first).
fn idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [dir.join(format!("{name}.gz")), dir.join(name)].into_iter().find(|p| p.is_file())
}
