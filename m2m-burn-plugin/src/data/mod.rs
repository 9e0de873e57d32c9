//! Data: readers for the official file formats and for users' image files, long-tailed
//! subsets, the validation/test split, input normalisation and augmentation.

mod augment;
pub mod cifar;
mod dataset;
mod error;
pub mod fetch;
pub mod idx;
mod image_set;
pub mod images;
mod longtail;
mod named_images;
mod source;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use augment::{augment_into, Augmentation};
pub use dataset::DatasetName;
pub use error::DataError;
pub use image_set::ImageSet;
pub use longtail::{fingerprint, Selection};
pub(crate) use longtail::{select_indices, val_test_split};
pub use m2m_core::imbalance::ImbalanceProfile;
pub use named_images::NamedImages;
pub use source::{channel_statistics, DataSource, Normalization};
pub use source::{DataFormat, SourceSplits};

/// How the test files are used for model selection and reporting.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum EvalSplit {
    /// Per class, the first `val_fraction` of the test set is validation and the rest is
    /// test; test accuracy is read at the best-validation epoch (the M2m protocol).
    ValFromTest {
        /// Share of each test class (in file order) that becomes validation, in (0, 1);
        /// rounded down per class.
        val_fraction: f64,
    },
    /// The whole test set serves as both (LDAM-DRW's protocol: selection on the test set,
    /// which the reports flag).
    FullTest,
    /// Per class, the first `val_fraction` of the training files is validation (carved
    /// out before the long-tailed subset is cut from the rest); the test set is the test.
    ValFromTrain {
        /// Share of each training class (in file order) that becomes validation, in (0, 1);
        /// rounded down per class, and every class must keep at least one image.
        val_fraction: f64,
    },
    /// The data set's own validation split (image files with a `val` folder or file).
    ValSplit,
}

/// Which training images a run keeps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Imbalance {
    /// A long-tailed subset cut by `profile` with `N_max / N_min = ratio` from `N_max`
    /// images per class (`max_per_class`, else the smallest class of the split).
    Cut {
        /// How the class counts fall from class 0 to the last class (exponential, step, ...).
        profile: ImbalanceProfile,
        /// The imbalance ratio `N_max / N_min`, at least 1.
        ratio: f64,
    },
    /// The training split's own class counts, each capped at `max_per_class`.
    AsIs,
}

/// A validated description of the training data of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    /// A built-in data set or the user's image files.
    pub source: DataSource,
    /// The folder with the data files (`dataset.path`). `None` searches the usual places
    /// for a built-in set (`$M2M_DATA`, `/usr/share/datasets`, `~/data`, `./data`);
    /// image files require it.
    pub path: Option<PathBuf>,
    /// The model's per-channel input normalisation.
    pub normalization: Normalization,
    /// Whether a long-tailed subset is cut from the training split, and how.
    pub imbalance: Imbalance,
    /// `Cut`: images per class before imbalance (`None`: the smallest class of the
    /// files); `AsIs`: the most images any class keeps (`None`: all).
    pub max_per_class: Option<usize>,
    /// Which images of each class make up the subset.
    pub selection: Selection,
    /// Seed of the subset under `SeededShuffle` (separate from the training seed).
    pub data_seed: u64,
    /// Where the validation images come from and what the test set is.
    pub eval_split: EvalSplit,
    /// Use only the first this many test-file images of each class for validation and
    /// test (quick runs); `None` uses them all.
    pub max_eval_per_class: Option<usize>,
    /// Training-time augmentation (random crop, horizontal flip).
    pub augmentation: Augmentation,
}

/// What a run trains and evaluates on, plus the facts a reader of the results needs.
#[derive(Debug, Clone)]
pub struct PreparedData {
    /// The training images the run keeps (the long-tailed subset, or the split as it is).
    pub train: ImageSet,
    /// The validation images the best model is selected on.
    pub val: ImageSet,
    /// The test images accuracy is reported on (the same as `val` under `FullTest`).
    pub test: ImageSet,
    /// Provenance of these sets, written as the run's `data-manifest.json`.
    pub manifest: DataManifest,
}

/// Provenance of the data of a run, written into its run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataManifest {
    /// The data set's label ([`DataSource::label`]).
    pub dataset: String,
    /// The folder the data files were read from.
    pub source: PathBuf,
    /// Image shape, class names and the input normalisation the model uses.
    pub format: DataFormat,
    /// Training images kept per class, by label.
    pub train_counts: Vec<usize>,
    /// Training images kept in all.
    pub train_total: usize,
    /// Measured `N_max / N_min` of `train_counts` (infinite if a class has none).
    pub imbalance_factor: f64,
    /// 16 hex digits (FNV-1a) over the indices of the kept training images: equal
    /// fingerprints mean the same subset of the same files.
    pub subset_fingerprint: String,
    /// Number of validation images.
    pub val_size: usize,
    /// Number of test images.
    pub test_size: usize,
    /// Whether the model is selected on the test set itself (`FullTest`), which reports
    /// flag.
    pub selected_on_test: bool,
}

impl DatasetSpec {
    /// The data format when the recipe alone fixes it (a built-in set with standard or
    /// given normalisation, image files with listed classes and given normalisation);
    /// otherwise it is known once the data is prepared ([`DataManifest::format`]).
    pub fn known_format(&self) -> Option<DataFormat> {
        let (channels, height, width) = self.source.image_shape();
        let class_names = self.source.known_class_names()?;
        let (mean, std) = self.fixed_normalization()?;
        Some(DataFormat { channels, height, width, class_names, mean, std })
    }

    /// The normalisation when it does not depend on the training images (`Standard` of a
    /// built-in set, or `Given`).
    fn fixed_normalization(&self) -> Option<(Vec<f32>, Vec<f32>)> {
        match &self.normalization {
            Normalization::Standard => self.source.standard_normalization(),
            Normalization::Given { mean, std } => Some((mean.clone(), std.clone())),
            Normalization::FromTrain => None,
        }
    }

    /// Training images per class a run keeps, known before any file is read: built-in
    /// data sets only (their class counts are published), by the same rules as
    /// [`DatasetSpec::prepare`]; `None` for image files or a spec the data would refuse.
    pub fn expected_train_counts(&self) -> Option<Vec<usize>> {
        let &DataSource::Builtin(name) = &self.source else { return None };
        let mut available = name.train_class_counts();
        if let EvalSplit::ValFromTrain { val_fraction } = self.eval_split {
            // Carved per class, rounded down (longtail::val_test_split).
            available.iter_mut().for_each(|n| *n -= (*n as f64 * val_fraction).floor() as usize);
        }
        self.subset_counts(&available, Path::new(name.fetch_folder()), &name.class_names()).ok()
    }

    /// How many training images of each class the run keeps, from the `available` ones.
    fn subset_counts(
        &self,
        available: &[usize],
        source: &Path,
        class_names: &[String],
    ) -> Result<Vec<usize>, DataError> {
        match self.imbalance {
            Imbalance::Cut { profile, ratio } => {
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
                let counts = m2m_core::imbalance::class_counts(n_max, available.len(), ratio, profile);
                match counts.iter().position(|&n| n == 0) {
                    Some(k) => Err(DataError::Invalid(format!(
                        "dataset.ratio = {ratio} leaves class {k} with no training image (N_max = {n_max})"
                    ))),
                    None => Ok(counts),
                }
            }
            Imbalance::AsIs => match available.iter().position(|&n| n == 0) {
                Some(k) => Err(DataError::Invalid(format!(
                    "dataset.imbalance = AsIs: class {k} (`{}`) has no training image in {}",
                    class_names[k],
                    source.display()
                ))),
                None => Ok(available.iter().map(|&n| self.max_per_class.map_or(n, |cap| n.min(cap))).collect()),
            },
        }
    }

    /// Locates, reads and subsets the data.
    pub fn prepare(&self) -> Result<PreparedData, DataError> {
        let dir = self.source.locate(self.path.as_deref())?;
        let splits = self.source.read(&dir)?;
        self.prepare_splits(dir, splits)
    }

    /// Subsets already-read train and test sets of a built-in data set (tests feed sets
    /// they made).
    pub fn prepare_from(&self, source: PathBuf, train: ImageSet, test: ImageSet) -> Result<PreparedData, DataError> {
        let class_names = match &self.source {
            DataSource::Builtin(name) => name.class_names(),
            DataSource::Images(_) => (0..train.num_classes).map(|k| k.to_string()).collect(),
        };
        self.prepare_splits(source, SourceSplits { train, val: None, test, class_names })
    }

    /// Carves validation, cuts the long-tailed subset, splits the evaluation images and
    /// settles the normalisation.
    pub fn prepare_splits(&self, source: PathBuf, splits: SourceSplits) -> Result<PreparedData, DataError> {
        let SourceSplits { train: full_train, val: own_val, test: full_test, class_names } = splits;
        self.check_minority_start(full_train.num_classes)?;
        let (pool, carved_val) = self.carve_validation(full_train, &class_names)?;
        let counts = self.subset_counts(&pool.class_counts(), &source, &class_names)?;
        let chosen = select_indices(&pool.labels, &counts, self.selection, self.data_seed);
        let train = pool.select(&chosen);
        let (val, test, selected_on_test) = self.evaluation_sets(full_test, carved_val, own_val)?;
        let (mean, std) = self.normalization_of(&train)?;
        let format =
            DataFormat { channels: train.channels, height: train.height, width: train.width, class_names, mean, std };
        let manifest = DataManifest {
            dataset: self.source.label(),
            source,
            format,
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

    /// A step profile's first minority class must leave both sides non-empty. Checked with
    /// the recipe when it fixes the classes; here for class lists read from files.
    fn check_minority_start(&self, classes: usize) -> Result<(), DataError> {
        if let Imbalance::Cut { profile: ImbalanceProfile::Step { minority_start }, .. } = self.imbalance {
            if minority_start == 0 || minority_start >= classes {
                return Err(DataError::Invalid(format!(
                    "dataset.imbalance.minority_start = {minority_start} must be in 1..{classes} ({} has {classes} classes)",
                    self.source.label()
                )));
            }
        }
        Ok(())
    }

    /// With `ValFromTrain`, the validation images carved from the training set and what
    /// is left of it; otherwise the training set as it is.
    fn carve_validation(
        &self,
        full_train: ImageSet,
        class_names: &[String],
    ) -> Result<(ImageSet, Option<ImageSet>), DataError> {
        let EvalSplit::ValFromTrain { val_fraction } = self.eval_split else {
            return Ok((full_train, None));
        };
        let (v, rest) = val_test_split(&full_train.labels, full_train.num_classes, val_fraction);
        let carved = full_train.select(&v);
        if let Some(k) = carved.class_counts().iter().position(|&n| n == 0) {
            return Err(DataError::Invalid(format!(
                "dataset.eval_split.val_fraction = {val_fraction} leaves class {k} (`{}`) of {} with no validation image",
                class_names[k],
                self.source.label()
            )));
        }
        Ok((full_train.select(&rest), Some(carved)))
    }

    /// (validation, test, whether the model is selected on the test set) by `eval_split`,
    /// each capped at `max_eval_per_class`.
    fn evaluation_sets(
        &self,
        full_test: ImageSet,
        carved_val: Option<ImageSet>,
        own_val: Option<ImageSet>,
    ) -> Result<(ImageSet, ImageSet, bool), DataError> {
        let cap = |set: ImageSet| match self.max_eval_per_class {
            None => set,
            Some(n) => set.first_per_class(n),
        };
        let full_test = cap(full_test);
        Ok(match self.eval_split {
            EvalSplit::ValFromTest { val_fraction } => {
                let (v, t) = val_test_split(&full_test.labels, full_test.num_classes, val_fraction);
                (full_test.select(&v), full_test.select(&t), false)
            }
            EvalSplit::FullTest => (full_test.clone(), full_test, true),
            EvalSplit::ValFromTrain { .. } => (cap(carved_val.expect("carved by carve_validation")), full_test, false),
            EvalSplit::ValSplit => match own_val {
                Some(v) => (cap(v), full_test, false),
                None => {
                    return Err(DataError::Invalid(format!(
                        "dataset.eval_split = ValSplit, but {} has no validation split (image files with a `val` folder or file)",
                        self.source.label()
                    )))
                }
            },
        })
    }

    /// The per-channel (mean, std) the model normalises with.
    fn normalization_of(&self, train: &ImageSet) -> Result<(Vec<f32>, Vec<f32>), DataError> {
        let label = self.source.label();
        match &self.normalization {
            Normalization::FromTrain => {
                let (mean, std) = channel_statistics(train);
                if let Some(c) = std.iter().position(|&s| s <= 0.0) {
                    return Err(DataError::Invalid(format!(
                        "dataset.normalization = FromTrain: channel {c} of {label}'s training images is constant (std 0); give `Given(mean: [..], std: [..])`"
                    )));
                }
                Ok((mean, std))
            }
            _ => self.fixed_normalization().ok_or_else(|| {
                DataError::Invalid(format!(
                    "dataset.normalization = Standard: {label} is not a built-in data set; use FromTrain or Given"
                ))
            }),
        }
    }
}
