//! Data: readers for the official file formats, long-tailed subsets, the M2m
//! validation/test split, augmentation and the batch loader.

mod augment;
pub mod cifar;
mod dataset;
mod error;
pub mod idx;
mod image_set;
mod longtail;
mod named_images;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use augment::{augment_into, Augmentation};
pub use dataset::DatasetName;
pub use error::DataError;
pub use image_set::ImageSet;
pub use longtail::{fingerprint, select_indices, val_test_split, Selection};
pub use named_images::NamedImages;
pub use m2m_core::imbalance::ImbalanceProfile;

/// How the test files are used for model selection and reporting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum EvalSplit {
    /// Per class, the first `val_fraction` of the test set is validation and the rest is
    /// test; test accuracy is read at the best-validation epoch (the M2m protocol).
    ValFromTest { val_fraction: f64 },
    /// The whole test set serves as both (LDAM-DRW's protocol: selection on the test set,
    /// which the reports flag).
    FullTest,
}

/// A validated description of the training data of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub name: DatasetName,
    pub path: Option<PathBuf>,
    pub profile: ImbalanceProfile,
    pub ratio: f64,
    /// Images per class before imbalance; `None` takes the smallest class of the files.
    pub max_per_class: Option<usize>,
    pub selection: Selection,
    pub data_seed: u64,
    pub eval_split: EvalSplit,
    /// Use only the first this many test-file images of each class for validation and
    /// test (quick runs); `None` uses them all.
    pub max_eval_per_class: Option<usize>,
    pub augmentation: Augmentation,
}

/// What a run trains and evaluates on, plus the facts a reader of the results needs.
#[derive(Debug, Clone)]
pub struct PreparedData {
    pub train: ImageSet,
    pub val: ImageSet,
    pub test: ImageSet,
    pub manifest: DataManifest,
}

/// Provenance of the data of a run, written into its run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataManifest {
    pub dataset: DatasetName,
    pub source: PathBuf,
    pub train_counts: Vec<usize>,
    pub train_total: usize,
    pub imbalance_factor: f64,
    pub subset_fingerprint: String,
    pub val_size: usize,
    pub test_size: usize,
    pub selected_on_test: bool,
}

impl DatasetSpec {
    /// Locates, reads and subsets the data.
    pub fn prepare(&self) -> Result<PreparedData, DataError> {
        let dir = self.name.locate(self.path.as_deref())?;
        let (full_train, full_test) = self.name.read(&dir)?;
        self.prepare_from(dir, full_train, full_test)
    }

    /// Subsets already-read data (split out so tests can feed sets they made).
    pub fn prepare_from(&self, source: PathBuf, full_train: ImageSet, full_test: ImageSet) -> Result<PreparedData, DataError> {
        let available = full_train.class_counts();
        let smallest = available.iter().copied().min().unwrap_or(0);
        let n_max = match self.max_per_class {
            Some(n) if n > smallest => {
                return Err(DataError::Invalid(format!(
                    "dataset.max_per_class = {n}, but the smallest class of {} has only {smallest} training images",
                    source.display()
                )))
            }
            Some(n) => n,
            None => smallest,
        };
        let counts = m2m_core::imbalance::class_counts(n_max, full_train.num_classes, self.ratio, self.profile);
        if let Some(k) = counts.iter().position(|&n| n == 0) {
            return Err(DataError::Invalid(format!(
                "dataset.ratio = {} leaves class {k} with no training image (N_max = {n_max})",
                self.ratio
            )));
        }
        let chosen = select_indices(&full_train.labels, &counts, self.selection, self.data_seed);
        let train = full_train.select(&chosen);
        let full_test = match self.max_eval_per_class {
            None => full_test,
            Some(n) => {
                let mut seen = vec![0usize; full_test.num_classes];
                let keep: Vec<usize> = (0..full_test.len())
                    .filter(|&i| {
                        let y = full_test.labels[i];
                        seen[y] += 1;
                        seen[y] <= n
                    })
                    .collect();
                full_test.select(&keep)
            }
        };
        let (val, test, selected_on_test) = match self.eval_split {
            EvalSplit::ValFromTest { val_fraction } => {
                let (v, t) = val_test_split(&full_test.labels, full_test.num_classes, val_fraction);
                (full_test.select(&v), full_test.select(&t), false)
            }
            EvalSplit::FullTest => (full_test.clone(), full_test, true),
        };
        let manifest = DataManifest {
            dataset: self.name,
            source,
            train_total: train.len(),
            imbalance_factor: m2m_core::imbalance::imbalance_factor(&counts),
            train_counts: counts,
            subset_fingerprint: fingerprint(&chosen),
            val_size: val.len(),
            test_size: test.len(),
            selected_on_test,
        };
        Ok(PreparedData { train, val, test, manifest })
    }
}
