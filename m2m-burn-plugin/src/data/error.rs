use std::path::PathBuf;

/// Why a data set could not be read. Every variant names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("{path}: cannot read: {cause}. {hint}")]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
        /// What was expected there, or how to obtain the data.
        hint: String,
    },
    /// A file or folder could not be written (exporting images).
    #[error("{path}: cannot write: {cause}")]
    Write {
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A file was read but its contents are not what its format requires.
    #[error("{path}: corrupt or wrong file: {reason}")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image file and its label file disagree on the number of items.
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Number of images its header announces.
        n_images: usize,
        /// The label file.
        labels: PathBuf,
        /// Number of labels it holds.
        n_labels: usize,
    },
    /// The data set's files were not found.
    #[error("data set `{dataset}` not found; looked in: {searched}. {hint}")]
    NotFound {
        /// The data set's label (`FashionMnist`, or the image-file set's name).
        dataset: String,
        /// The places searched, comma-separated (or the `dataset.path` given).
        searched: String,
        /// How to obtain the files or point the recipe at them.
        hint: String,
    },
    /// Anything else: the files and the recipe do not fit together (empty classes, bad
    /// labels, an impossible subset, ...); the message says what and where.
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// A [`DataError::Corrupt`] for `path` with `reason`.
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Corrupt { path: path.into(), reason: reason.into() }
    }
}
