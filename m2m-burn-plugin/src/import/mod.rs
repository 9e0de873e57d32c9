//! Networks trained elsewhere: PyTorch state dicts (legacy `torch.save` as in M2m's
//! `.t7` files, the zip format of torch >= 1.6, and safetensors) loaded into our models.
//!
//! Why our own reader and not burn-store 0.21's `PytorchStore`: burn-store reads both
//! torch formats, but its pickle reader pads a tensor whose bytes are missing with zeros
//! (a truncated file loads silently) and sizes its allocations from the file without
//! checking them against it. Checkpoints come from strangers, so ours refuses both (see
//! `pickle.rs`). Safetensors goes through the `safetensors` crate that burn-store uses.

mod container;
mod optimizer;
mod pickle;
mod reference;

use std::path::{Path, PathBuf};

pub(crate) use container::Container;
pub use container::{Decoded, Format};
pub use optimizer::momentum_buffers;
pub use pickle::DType;
pub use reference::import_net;
pub use reference::ImportReport;
pub use reference::KeyMapping;
pub(crate) use reference::{is_transposed, param_ids_by_key};

use burn::tensor::backend::Backend;
use pickle::Value;

use crate::model::{load_classifier, resolve_model_source, CheckpointError, ModelSource, ModelSpec, Net};

/// Why [`load_any_classifier`] could not load a classifier.
#[derive(Debug, thiserror::Error)]
pub enum LoadModelError {
    /// No model at the path, or m2m's own model file is unreadable or does not match.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A foreign (PyTorch or safetensors) checkpoint could not be imported.
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Loads a classifier for `spec` from, in this order of precedence: a run directory (its
/// best-validation model), a model saved by m2m (path without extension), or a PyTorch
/// (legacy or zip) or safetensors file. Foreign files are imported (ResNet-32 only) and
/// their key mapping is returned.
pub fn load_any_classifier<B: Backend>(
    spec: &ModelSpec,
    path: &Path,
    device: &B::Device,
) -> Result<(Net<B>, Option<ImportReport>), LoadModelError> {
    match resolve_model_source(path)? {
        ModelSource::Ours(p) => Ok((load_classifier(spec, &p, device)?, None)),
        ModelSource::Foreign(p) => {
            let sd = StateDict::read(&p)?;
            let (net, report) = import_net(spec, &sd, device).map_err(|kind| ImportError::new(&p, kind))?;
            Ok((net, Some(report)))
        }
    }
}

/// A checkpoint that could not be imported: the file and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {kind}", path = path.display())]
pub struct ImportError {
    /// The checkpoint file that was being read.
    pub path: PathBuf,
    /// Why it could not be imported.
    pub kind: ErrorKind,
}

impl ImportError {
    /// An error about the file at `path`.
    pub fn new(path: &Path, kind: ErrorKind) -> Self {
        Self { path: path.to_path_buf(), kind }
    }
}

/// Why a checkpoint could not be imported (without the file, which [`ImportError`] adds).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read from disk (the operating system's message).
    #[error("cannot read the file: {0}")]
    Io(String),
    /// The file is none of the formats in [`Format`].
    #[error(
        "unknown checkpoint format (first bytes {}); expected torch.save output (legacy or zip), safetensors, or a model saved by m2m (pass its path without extension)",
        hex(first_bytes)
    )]
    UnknownFormat {
        /// Up to the first 16 bytes of the file, shown in hex in the message.
        first_bytes: Vec<u8>,
    },
    /// The file ends early or a part of it is missing, e.g. a storage with fewer bytes
    /// than it declares.
    #[error("truncated or damaged: {0}")]
    Truncated(String),
    /// The file is complete but its contents do not make a valid checkpoint.
    #[error("not a valid checkpoint: {0}")]
    Malformed(String),
    /// A valid file using something this reader does not handle (big-endian data, an
    /// unsupported element type).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The file holds no dict of tensors, at the top level or under one of the usual
    /// nesting keys (`net`, `state_dict`, ...); carries the top-level keys.
    #[error("no state dict of tensors found (top-level keys: {})", .0.join(", "))]
    NoStateDict(Vec<String>),
    /// The state dict's keys differ from the model's.
    #[error("{}", keys_message(missing, unexpected))]
    Keys {
        /// Keys the model needs that the file lacks.
        missing: Vec<String>,
        /// Keys in the file that the model has no place for (`num_batches_tracked` is
        /// ignored, never listed here).
        unexpected: Vec<String>,
    },
    /// Tensors whose shape differs from the model's: `(key, expected shape, shape in the
    /// file)` for each.
    #[error("shape mismatch: {}", shapes_message(.0))]
    Shapes(Vec<(String, Vec<usize>, Vec<usize>)>),
    /// The classifier head has a different number of classes than the model.
    #[error("the checkpoint has {found} classes, the model needs {expected}")]
    ClassCount {
        /// Classes in the file's head.
        found: usize,
        /// Classes the model has.
        expected: usize,
    },
    /// The first convolution takes a different number of input channels than the model.
    #[error("the checkpoint has {found} input channels, the model needs {expected}")]
    InputChannels {
        /// Input channels of the file's first convolution.
        found: usize,
        /// Input channels of the model (1 for grey-scale, 3 for colour images).
        expected: usize,
    },
    /// The file has a linear head where the model has a cosine one, or the reverse.
    #[error("the checkpoint has a {found} head, the model a {expected} head")]
    Head {
        /// The kind of head in the file (`linear` or `cosine ...`).
        found: &'static str,
        /// The kind of head the model has.
        expected: &'static str,
    },
    /// The model's architecture cannot take an imported checkpoint (only ResNet-32 can).
    #[error("{0}")]
    Architecture(String),
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// At most this many keys are named in an error (with a count of the rest).
const KEYS_SHOWN: usize = 12;

fn key_list(keys: &[String]) -> String {
    let shown = keys.iter().take(KEYS_SHOWN).cloned().collect::<Vec<_>>().join(", ");
    match keys.len().checked_sub(KEYS_SHOWN) {
        Some(rest) if rest > 0 => format!("{shown} and {rest} more"),
        _ => shown,
    }
}

fn keys_message(missing: &[String], unexpected: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing keys ({}): {}", missing.len(), key_list(missing)));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected keys ({}): {}", unexpected.len(), key_list(unexpected)));
    }
    parts.join("; ")
}

fn shapes_message(list: &[(String, Vec<usize>, Vec<usize>)]) -> String {
    list.iter().map(|(k, e, f)| format!("{k}: expected {e:?}, found {f:?}")).collect::<Vec<_>>().join("; ")
}

/// The tensors of a state dict, by key (`module.` prefixes removed), with where in the
/// file they were found.
pub struct StateDict {
    /// The file layout the state dict was read from.
    pub format: Format,
    /// The top-level key holding the state dict (`net` in M2m's files), if nested.
    pub nested_under: Option<String>,
    /// Tensors in file order.
    pub tensors: Vec<(String, Decoded)>,
    /// Top-level entries outside the state dict (`optimizer`, `acc`, `epoch`, ...).
    pub outside: Vec<String>,
    /// The whole file, for what lives outside the state dict (optimizer state).
    pub(crate) container: Container,
}

/// Keys under which training scripts nest their state dict, tried in this order.
const NESTING_KEYS: [&str; 5] = ["net", "state_dict", "model", "model_state_dict", "network"];

impl StateDict {
    /// Reads the checkpoint file at `path`; errors if it cannot be read, is not one of
    /// the [`Format`]s, is damaged, or holds no state dict.
    pub fn read(path: &Path) -> Result<StateDict, ImportError> {
        let bytes = std::fs::read(path).map_err(|e| ImportError::new(path, ErrorKind::Io(e.to_string())))?;
        Self::parse(path, &bytes)
    }

    /// Reads a checkpoint from `bytes`, the contents of `path` (used only to name the file
    /// in errors); fails as [`read`](Self::read) does.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<StateDict, ImportError> {
        let fail = |kind| ImportError::new(path, kind);
        let container = Container::parse(bytes).map_err(fail)?;
        let Value::Dict(top) = &container.root else {
            return Err(fail(ErrorKind::Malformed(
                "the file holds no dict at its top level (a whole pickled model is not read: save its state_dict())"
                    .into(),
            )));
        };
        let top_keys: Vec<String> = top.iter().map(|(k, _)| key_text(k)).collect();
        // A nested state dict first: M2m's files also hold a top-level `rng_state` tensor.
        let (nested_under, dict) =
            match NESTING_KEYS.iter().find_map(|&k| container.root.get(k).filter(|v| has_tensors(v)).map(|v| (k, v))) {
                Some((k, v)) => (Some(k.to_string()), v),
                None if top.iter().any(|(_, v)| matches!(v, Value::Tensor(_))) => (None, &container.root),
                None => return Err(fail(ErrorKind::NoStateDict(top_keys))),
            };
        let mut refs = Vec::new();
        flatten(dict, String::new(), &mut refs);
        let mut tensors = Vec::with_capacity(refs.len());
        for (key, t) in refs {
            let decoded = container.decode(&t).map_err(|kind| fail(with_key(kind, &key)))?;
            let key = key.strip_prefix("module.").map(str::to_string).unwrap_or(key);
            tensors.push((key, decoded));
        }
        let outside = match &nested_under {
            Some(k) => top_keys.into_iter().filter(|t| t != k).collect(),
            None => Vec::new(),
        };
        Ok(StateDict { format: container.format, nested_under, tensors, outside, container })
    }

    /// The tensor under `key` (with any `module.` prefix already removed), if present.
    pub fn get(&self, key: &str) -> Option<&Decoded> {
        self.tensors.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}

fn with_key(kind: ErrorKind, key: &str) -> ErrorKind {
    match kind {
        ErrorKind::Truncated(r) => ErrorKind::Truncated(format!("{key}: {r}")),
        ErrorKind::Malformed(r) => ErrorKind::Malformed(format!("{key}: {r}")),
        other => other,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn has_tensors(v: &Value) -> bool {
    match v {
        Value::Tensor(_) => true,
        Value::Dict(items) => items.iter().any(|(_, x)| has_tensors(x)),
        _ => false,
    }
}

/// Tensors of nested dicts under dotted keys.
fn flatten(v: &Value, prefix: String, out: &mut Vec<(String, pickle::TensorRef)>) {
    match v {
        Value::Tensor(t) => out.push((prefix, t.clone())),
        Value::Dict(items) => {
            for (k, x) in items {
                let key = if prefix.is_empty() { key_text(k) } else { format!("{prefix}.{}", key_text(k)) };
                flatten(x, key, out);
            }
        }
        _ => {}
    }
}
