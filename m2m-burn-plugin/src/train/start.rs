//! f's starting point when a recipe has `start_from`: the network of a checkpoint and,
//! where the file holds them, its SGD momentum buffers, continued at a given epoch (the
//! reference's `--net_t`). The LR comes from the recipe's schedule at that epoch; the
//! file's learning rate, optimizer settings and random-number state are not used.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use burn::optim::momentum::MomentumState;
use burn::optim::record::AdaptorRecord;
use burn::optim::{Optimizer, Sgd, SgdState};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::import::{is_transposed, momentum_buffers, param_ids_by_key, Decoded, ImportError, StateDict};
use crate::model::{load_classifier, resolve_model_source, ModelSource, ModelSpec, Net};

/// What a run started from, written to `start.json` in its run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    pub checkpoint: std::path::PathBuf,
    /// The first epoch trained (0-based).
    pub epoch: usize,
    /// How the checkpoint was read (`m2m model` or a foreign format).
    pub format: String,
    /// Parameters whose SGD momentum buffer came from the file (0: momentum starts at zero).
    pub momentum_buffers: usize,
    pub parameters: usize,
    /// What the run did not take from the file.
    pub not_carried: Vec<String>,
}

/// burn's record of our SGD optimizer: per-parameter state by `ParamId`.
type SgdRecord<B> = <super::Optim<B> as Optimizer<Net<B>, B>>::Record;

/// The network and optimizer state f starts from.
pub struct StartPoint<B: AutodiffBackend> {
    pub model: Net<B>,
    /// Momentum buffers for the optimizer (`None`: the file has none).
    pub momentum: Option<SgdRecord<B>>,
    pub record: StartRecord,
}

impl<B: AutodiffBackend> StartPoint<B> {
    /// `optim` with the file's momentum buffers loaded, where there are any.
    pub fn optimizer(&self, optim: super::Optim<B>) -> super::Optim<B> {
        match &self.momentum {
            Some(record) => optim.load_record(record.clone()),
            None => optim,
        }
    }
}

struct Trainable(usize);

impl<B: burn::tensor::backend::Backend> burn::module::ModuleVisitor<B> for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        // BatchNorm's running statistics are visited too, but never require a gradient.
        self.0 += param.val().is_require_grad() as usize;
    }
}

/// Tensors the optimizer steps (what a momentum buffer can belong to).
fn trainable_tensors<B: AutodiffBackend>(model: &Net<B>) -> usize {
    let mut t = Trainable(0);
    burn::module::Module::visit(model, &mut t);
    t.0
}

fn velocity<B: AutodiffBackend, const D: usize>(
    t: &Decoded,
    device: &B::Device,
) -> AdaptorRecord<Sgd<B::InnerBackend>, B> {
    let v = Tensor::<B::InnerBackend, D>::from_data(TensorData::new(t.values.clone(), t.shape.clone()), device);
    AdaptorRecord::from_state::<D>(SgdState::new(Some(MomentumState::new(v))))
}

/// Loads f's starting point for `spec`.
pub fn load_start<B: AutodiffBackend>(
    checkpoint: &Path,
    epoch: usize,
    spec: &ModelSpec,
    device: &B::Device,
) -> anyhow::Result<StartPoint<B>> {
    let what = || format!("start_from.checkpoint: {}", checkpoint.display());
    let mut not_carried = vec![
        "learning rate and optimizer settings (the recipe's schedule at this epoch applies)".to_string(),
        "random-number state (sampling and augmentation are seeded by the recipe's seed and the epoch)".to_string(),
    ];
    match resolve_model_source(checkpoint).with_context(what)? {
        ModelSource::Ours(path) => {
            let model = load_classifier::<B>(spec, &path, device).with_context(what)?;
            let parameters = trainable_tensors(&model);
            not_carried.push("SGD momentum (a model saved by m2m holds none; it starts at zero)".into());
            let record = StartRecord {
                checkpoint: checkpoint.to_path_buf(),
                epoch,
                format: "m2m model".into(),
                momentum_buffers: 0,
                parameters,
                not_carried,
            };
            Ok(StartPoint { model, momentum: None, record })
        }
        ModelSource::Foreign(path) => {
            let sd = StateDict::read(&path).with_context(what)?;
            let (model, report) = crate::import::import_net::<B>(spec, &sd, device)
                .map_err(|k| ImportError::new(&path, k))
                .with_context(what)?;
            let buffers = momentum_buffers(&sd, spec).map_err(|k| ImportError::new(&path, k)).with_context(what)?;
            let ids = param_ids_by_key(spec, &model);
            let parameters = trainable_tensors(&model);
            let momentum = buffers.as_ref().map(|b| {
                b.iter()
                    .map(|(key, t)| {
                        let t = if is_transposed(spec, key) { t.transposed() } else { t.clone() };
                        let rec = match t.shape.len() {
                            1 => velocity::<B, 1>(&t, device),
                            2 => velocity::<B, 2>(&t, device),
                            _ => velocity::<B, 4>(&t, device),
                        };
                        (ids[key], rec)
                    })
                    .collect::<SgdRecord<B>>()
            });
            let carried = buffers.as_ref().map_or(0, HashMap::len);
            if buffers.is_none() {
                not_carried.push("SGD momentum (the file holds no optimizer state; it starts at zero)".into());
            } else if carried < parameters {
                not_carried.push(format!(
                    "SGD momentum of {} parameters the file has no buffer for (zero)",
                    parameters - carried
                ));
            }
            if !report.ignored.is_empty() {
                not_carried.push("BatchNorm num_batches_tracked counters (our BatchNorm uses a fixed momentum)".into());
            }
            let record = StartRecord {
                checkpoint: checkpoint.to_path_buf(),
                epoch,
                format: report.format.to_string(),
                momentum_buffers: carried,
                parameters,
                not_carried,
            };
            Ok(StartPoint { model, momentum, record })
        }
    }
}
