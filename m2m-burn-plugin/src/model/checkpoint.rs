//! Saving and loading classifiers with a metadata sidecar, so that a checkpoint of the
//! wrong architecture, class count or shape is refused with a clear error instead of
//! loading silently (burn 0.21's `load_record` does not check shapes).

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::{ModelSpec, Net};

/// Written next to every model file as `<name>.meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// What the saved model is: architecture, head, input shape and normalisation.
    pub spec: ModelSpec,
    /// Parameter shapes in visiting order.
    pub shapes: Vec<Vec<usize>>,
}

/// A model that could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The model file or its metadata is missing, unreadable or corrupt, or the path names
    /// nothing loadable.
    #[error("{path}: cannot read checkpoint: {reason}")]
    Read {
        /// The path given: a model without extension, a run directory or a checkpoint file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The model file or its metadata could not be written.
    #[error("{path}: cannot write checkpoint: {reason}")]
    Write {
        /// The path given (without extension).
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The saved model is of another architecture, head, input channel or class count, or
    /// its tensors have other shapes than the model asked for.
    #[error("{path}: checkpoint does not match the model: {reason}")]
    Mismatch {
        /// The path given (without extension).
        path: PathBuf,
        /// What differs.
        reason: String,
    },
}

/// The weights (parameters and running statistics) of a model as bytes, exactly, to load
/// into a model on another backend with [`net_from_bytes`].
pub fn net_to_bytes<B: Backend>(model: &Net<B>) -> Vec<u8> {
    use burn::record::{BinBytesRecorder, Recorder};
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(model.clone().into_record(), ())
        .expect("recording a model to memory")
}

/// A network of `spec` on backend `B` with the weights in `bytes` ([`net_to_bytes`]).
pub fn net_from_bytes<B: Backend>(spec: &ModelSpec, bytes: &[u8], device: &B::Device) -> Result<Net<B>, String> {
    use burn::record::{BinBytesRecorder, Recorder};
    let record = BinBytesRecorder::<FullPrecisionSettings>::default()
        .load(bytes.to_vec(), device)
        .map_err(|e| format!("loading the weights: {e}"))?;
    Ok(spec.init_zeroed::<B>(device).load_record(record))
}

struct Shapes(Vec<Vec<usize>>);

impl<B: Backend> ModuleVisitor<B> for Shapes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.lazy_shape().to_vec());
    }
}

/// Shapes of all float parameters, in visiting order.
pub fn param_shapes<B: Backend, M: Module<B>>(model: &M) -> Vec<Vec<usize>> {
    let mut v = Shapes(Vec::new());
    model.visit(&mut v);
    v.0
}

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

/// The metadata file beside a model saved at `path` (without extension): `PATH.meta.json`.
pub fn meta_path(path: &Path) -> PathBuf {
    crate::fs::with_suffix(path, ".meta.json")
}

/// The weights of a model saved at `path` (without extension): `PATH.mpk`.
pub fn model_file(path: &Path) -> PathBuf {
    crate::fs::with_suffix(path, ".mpk")
}

/// Saves `model` to `path` (`.mpk` is appended by burn) plus its metadata sidecar.
pub fn save_classifier<B: Backend>(model: &Net<B>, spec: &ModelSpec, path: &Path) -> Result<(), CheckpointError> {
    let write_err = |reason: String| CheckpointError::Write { path: path.to_path_buf(), reason };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| write_err(e.to_string()))?;
    }
    // burn writes in place: write a temporary file and rename it, so that a kill during
    // the write never leaves a damaged model where a good one was.
    // burn replaces the extension of the path it is given; ending it in `.mpk` keeps a
    // name with dots whole.
    let partial = crate::fs::with_suffix(path, "-partial.mpk");
    model.clone().save_file(partial.clone(), &recorder()).map_err(|e| write_err(e.to_string()))?;
    std::fs::rename(&partial, model_file(path)).map_err(|e| write_err(e.to_string()))?;
    let meta = ModelMeta { spec: spec.clone(), shapes: param_shapes(model) };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| write_err(e.to_string()))?;
    crate::fs::write_atomic(&meta_path(path), json.as_bytes()).map_err(|e| write_err(e.to_string()))
}

/// The metadata sidecar of a model saved by [`save_classifier`].
pub fn read_meta(path: &Path) -> Result<ModelMeta, CheckpointError> {
    let read_err = |reason: String| CheckpointError::Read { path: path.to_path_buf(), reason };
    let meta_file = meta_path(path);
    let meta_text = std::fs::read_to_string(&meta_file)
        .map_err(|e| read_err(format!("metadata {} is unreadable ({e}); was it saved by m2m?", meta_file.display())))?;
    serde_json::from_str(&meta_text).map_err(|e| read_err(format!("metadata {} is corrupt: {e}", meta_file.display())))
}

/// Loads a model saved by [`save_classifier`] and checks it against `spec`.
pub fn load_classifier<B: Backend>(
    spec: &ModelSpec,
    path: &Path,
    device: &B::Device,
) -> Result<Net<B>, CheckpointError> {
    let mismatch = |reason: String| CheckpointError::Mismatch { path: path.to_path_buf(), reason };
    let read_err = |reason: String| CheckpointError::Read { path: path.to_path_buf(), reason };
    let meta = read_meta(path)?;
    if meta.spec.architecture != spec.architecture
        || meta.spec.num_classes != spec.num_classes
        || meta.spec.in_channels != spec.in_channels
        || meta.spec.cosine_head != spec.cosine_head
    {
        return Err(mismatch(format!(
            "checkpoint holds {:?} (cosine head {}) with {} input channels and {} classes, expected {:?} (cosine head {}) with {} input channels and {} classes",
            meta.spec.architecture, meta.spec.cosine_head, meta.spec.in_channels, meta.spec.num_classes,
            spec.architecture, spec.cosine_head, spec.in_channels, spec.num_classes
        )));
    }
    let fresh: Net<B> = spec.init_zeroed(device);
    let expected = param_shapes(&fresh);
    let record = {
        use burn::record::Recorder;
        let file = model_file(path);
        // A record whose tensor ranks do not fit panics inside burn; turn that into an error.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Recorder::<B>::load::<<Net<B> as Module<B>>::Record>(&recorder(), file.clone(), device)
        }))
        .map_err(|_| mismatch("tensor ranks do not fit the model".into()))?
        .map_err(|e| read_err(e.to_string()))?
    };
    let loaded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fresh.load_record(record)))
        .map_err(|_| mismatch("tensors do not fit the model".into()))?;
    let got = param_shapes(&loaded);
    if got != expected {
        let first = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(0);
        return Err(mismatch(format!(
            "parameter #{first} has shape {:?}, the model needs {:?} ({} vs {} parameters)",
            got.get(first),
            expected.get(first),
            got.len(),
            expected.len()
        )));
    }
    Ok(loaded)
}

/// Where a classifier comes from, as [`load_any_classifier`] resolves a path.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSource {
    /// A model saved by m2m: the path without extension (`runs/x/model-best-val`).
    Ours(PathBuf),
    /// A PyTorch (legacy or zip) or safetensors file.
    Foreign(PathBuf),
}

/// The best-validation model of a run directory, a model saved by m2m (path without
/// extension), or a foreign checkpoint file, in that order.
pub fn resolve_model_source(path: &Path) -> Result<ModelSource, CheckpointError> {
    if path.is_dir() {
        let best = crate::run_dir::RunDir::new(path.to_path_buf()).best_model_path();
        if meta_path(&best).is_file() {
            return Ok(ModelSource::Ours(best));
        }
        return Err(CheckpointError::Read {
            path: path.to_path_buf(),
            reason: "a folder, but not a finished m2m run directory (no model-best-val.meta.json)".into(),
        });
    }
    if meta_path(path).is_file() && !path.is_file() {
        return Ok(ModelSource::Ours(path.to_path_buf()));
    }
    // The weights file of a model saved by m2m, named with its extension.
    if let Some(stem) = path.to_str().and_then(|p| p.strip_suffix(".mpk")).map(Path::new) {
        if meta_path(stem).is_file() {
            return Ok(ModelSource::Ours(stem.to_path_buf()));
        }
    }
    if path.is_file() {
        return Ok(ModelSource::Foreign(path.to_path_buf()));
    }
    Err(CheckpointError::Read {
        path: path.to_path_buf(),
        reason: "no such file, run directory or m2m model (a model saved by m2m is named without extension)".into(),
    })
}
