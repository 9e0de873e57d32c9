use std::path::PathBuf;

/// Why a data set could not be read. Every variant names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot read: {cause}. {hint}")]
    Io { path: PathBuf, cause: std::io::Error, hint: String },
    #[error("{path}: corrupt or wrong file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{images} holds {n_images} images but {labels} holds {n_labels} labels")]
    CountMismatch { images: PathBuf, n_images: usize, labels: PathBuf, n_labels: usize },
    #[error("data set `{dataset}` not found; looked in: {searched}. {hint}")]
    NotFound { dataset: String, searched: String, hint: String },
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::Corrupt { path: path.into(), reason: reason.into() }
    }
}
