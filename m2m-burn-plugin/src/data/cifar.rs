//! Reader for the official CIFAR-10 / CIFAR-100 binary versions.
//!
//! CIFAR-10: `data_batch_{1..5}.bin` and `test_batch.bin`, records of 1 label byte and
//! 3072 pixel bytes. CIFAR-100: `train.bin` and `test.bin`, records of a coarse label, a
//! fine label and 3072 pixel bytes; we use the fine labels.

use std::path::Path;

use super::{DataError, ImageSet};

/// Bytes of one CIFAR image: 3 channels of 32×32 pixels, channel-major.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which of the two CIFAR binary formats a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10: 10 classes, records of 1 label byte and the pixels.
    Cifar10,
    /// CIFAR-100: 100 (fine) classes, records of a coarse and a fine label byte and the
    /// pixels.
    Cifar100,
}

impl CifarKind {
    /// Number of classes (10 or 100; CIFAR-100 counts its fine labels).
    pub fn num_classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }

    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }

    /// The files of each split, in the order torchvision concatenates them.
    pub fn files(self, train: bool) -> &'static [&'static str] {
        match (self, train) {
            (CifarKind::Cifar10, true) => {
                &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
            }
            (CifarKind::Cifar10, false) => &["test_batch.bin"],
            (CifarKind::Cifar100, true) => &["train.bin"],
            (CifarKind::Cifar100, false) => &["test.bin"],
        }
    }

    /// Where to download the binary version and where to point the recipe, for errors.
    pub fn hint(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "Download the CIFAR-10 *binary version* (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and point `dataset.path` (or $M2M_DATA) at the folder holding data_batch_1.bin",
            CifarKind::Cifar100 => "Download the CIFAR-100 *binary version* (cifar-100-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it and point `dataset.path` (or $M2M_DATA) at the folder holding train.bin",
        }
    }
}

/// Parses the records of one binary file.
pub fn parse(path: &Path, kind: CifarKind, bytes: &[u8]) -> Result<(Vec<u8>, Vec<usize>), DataError> {
    let record = kind.label_bytes() + IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(DataError::corrupt(
            path,
            format!("{} bytes is not a whole number of {record}-byte records", bytes.len()),
        ));
    }
    let n = bytes.len() / record;
    let mut pixels = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[kind.label_bytes() - 1] as usize; // CIFAR-100: the fine label
        if label >= kind.num_classes() {
            return Err(DataError::corrupt(
                path,
                format!("record {i} has label {label}, out of range for {} classes", kind.num_classes()),
            ));
        }
        labels.push(label);
        pixels.extend_from_slice(&rec[kind.label_bytes()..]);
    }
    Ok((pixels, labels))
}

/// Reads the training or the test split from `dir`.
pub fn read_split(dir: &Path, kind: CifarKind, train: bool) -> Result<ImageSet, DataError> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in kind.files(train) {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|cause| DataError::Io {
            path: path.clone(),
            cause,
            hint: kind.hint().to_string(),
        })?;
        let (p, l) = parse(&path, kind, &bytes)?;
        pixels.extend(p);
        labels.extend(l);
    }
    ImageSet::new(3, 32, 32, kind.num_classes(), pixels, labels)
}

/// Encodes one CIFAR binary file (used by tests that write data in the official format).
pub fn encode(kind: CifarKind, pixels: &[u8], labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &y) in labels.iter().enumerate() {
        if kind == CifarKind::Cifar100 {
            out.push(y / 5); // a coarse label; not used by the reader
        }
        out.push(y);
        out.extend_from_slice(&pixels[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]);
    }
    out
}
