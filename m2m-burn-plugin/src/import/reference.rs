//! The M2m reference's ResNet-32 (`models/resnet32.py`: `resnet32`, `resnet32_norm`,
//! `resnet32_gray`) parameter names, mapped onto our [`ResNet32`]. The networks are the
//! same layer for layer; only names differ, and torch's `Linear` stores its weight
//! transposed relative to burn's.

use std::collections::HashMap;

use burn::module::{Module, ModuleVisitor, Param, ParamId, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use super::{Decoded, ErrorKind, Format, StateDict};
use crate::model::{Architecture, Backbone, BatchNorm2d, Head, ModelSpec, Net, ResNet32};

/// One imported tensor: its key in the file, where it went, its shape in the file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyMapping {
    /// The key in the state dict (`stage_1.0.conv_a.weight`).
    pub file_key: String,
    /// Where it went in our model (`stages[0].conv_a.weight`).
    pub model_path: String,
    /// The tensor's shape in the file (torch's layout, before any transpose).
    pub shape: Vec<usize>,
    /// Whether the tensor was transposed on the way in (the linear head's weight).
    pub transposed: bool,
}

/// What an import read and where each tensor went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    /// The file layout the state dict was read from.
    pub format: Format,
    /// The top-level key the state dict was nested under (`net` in M2m's files); `None`
    /// when the file's top level is the state dict itself.
    pub nested_under: Option<String>,
    /// Every tensor of the model and the file key it was loaded from, in the reference's
    /// `state_dict()` order.
    pub mapping: Vec<KeyMapping>,
    /// Keys of the state dict that carry nothing our model keeps (`num_batches_tracked`).
    pub ignored: Vec<String>,
    /// Top-level entries next to the state dict, not read.
    pub outside: Vec<String>,
}

impl ImportReport {
    /// The mapping as an aligned text table.
    pub fn table(&self) -> String {
        let width = self.mapping.iter().map(|m| m.file_key.len()).max().unwrap_or(0);
        let mut s = String::new();
        for m in &self.mapping {
            let t = if m.transposed { " (transposed)" } else { "" };
            s.push_str(&format!("{:<width$}  ->  {}  {:?}{t}\n", m.file_key, m.model_path, m.shape));
        }
        s
    }
}

/// (file key, our path, expected shape, transpose) for every tensor of the model, in the
/// reference's `state_dict()` order, which is also our model's visiting order.
fn expected_keys(spec: &ModelSpec) -> Vec<(String, String, Vec<usize>, bool)> {
    let mut keys = Vec::new();
    let bn = |keys: &mut Vec<_>, file: &str, ours: &str, c: usize| {
        for (f, o) in
            [("weight", "gamma"), ("bias", "beta"), ("running_mean", "running_mean"), ("running_var", "running_var")]
        {
            keys.push((format!("{file}.{f}"), format!("{ours}.{o}"), vec![c], false));
        }
    };
    keys.push(("conv_1_3x3.weight".into(), "conv_1_3x3.weight".into(), vec![16, spec.in_channels, 3, 3], false));
    bn(&mut keys, "bn_1", "bn_1", 16);
    let mut cin = 16;
    for (s, width) in [16usize, 32, 64].into_iter().enumerate() {
        for b in 0..5 {
            let file = format!("stage_{}.{b}", s + 1);
            let ours = format!("stages[{}]", s * 5 + b);
            keys.push((
                format!("{file}.conv_a.weight"),
                format!("{ours}.conv_a.weight"),
                vec![width, cin, 3, 3],
                false,
            ));
            bn(&mut keys, &format!("{file}.bn_a"), &format!("{ours}.bn_a"), width);
            keys.push((
                format!("{file}.conv_b.weight"),
                format!("{ours}.conv_b.weight"),
                vec![width, width, 3, 3],
                false,
            ));
            bn(&mut keys, &format!("{file}.bn_b"), &format!("{ours}.bn_b"), width);
            cin = width;
        }
    }
    let k = spec.num_classes;
    if spec.cosine_head {
        keys.push(("linear.weight".into(), "head.cosine.weight".into(), vec![64, k], false));
    } else {
        keys.push(("linear.weight".into(), "head.linear.weight".into(), vec![k, 64], true));
        keys.push(("linear.bias".into(), "head.linear.bias".into(), vec![k], false));
    }
    keys
}

/// The keys of trainable parameters (no running statistics), in `model.parameters()` order.
pub(super) fn trainable_keys(spec: &ModelSpec) -> Vec<String> {
    expected_keys(spec)
        .into_iter()
        .map(|k| k.0)
        .filter(|k| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .collect()
}

/// Whether our tensor for `key` is the file's transposed (torch's `Linear` weight).
pub fn is_transposed(spec: &ModelSpec, key: &str) -> bool {
    expected_keys(spec).iter().any(|k| k.0 == key && k.3)
}

struct Ids(Vec<ParamId>);

impl<B: Backend> ModuleVisitor<B> for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(param.id);
    }
}

/// Our parameter ids by the reference's key (trainable parameters and running statistics).
pub fn param_ids_by_key<B: Backend>(spec: &ModelSpec, net: &Net<B>) -> HashMap<String, ParamId> {
    let mut ids = Ids(Vec::new());
    net.visit(&mut ids);
    let keys = expected_keys(spec);
    assert_eq!(ids.0.len(), keys.len(), "ResNet-32's tensors and the reference's keys differ in number");
    keys.into_iter().map(|k| k.0).zip(ids.0).collect()
}

/// Checks a state dict against `spec` and builds the network from it.
pub fn import_net<B: Backend>(
    spec: &ModelSpec,
    sd: &StateDict,
    device: &B::Device,
) -> Result<(Net<B>, ImportReport), ErrorKind> {
    if spec.architecture != Architecture::ResNet32 {
        return Err(ErrorKind::Architecture(format!(
            "PyTorch checkpoints can be imported into ResNet-32 (the M2m reference's resnet32 / resnet32_norm / resnet32_gray), not {:?}",
            spec.architecture
        )));
    }
    check_head_and_classes(spec, sd)?;
    if let Some(stem) = sd.get("conv_1_3x3.weight") {
        if stem.shape.len() == 4 && stem.shape[1] != spec.in_channels {
            return Err(ErrorKind::InputChannels { found: stem.shape[1], expected: spec.in_channels });
        }
    }
    let expected = expected_keys(spec);
    let missing: Vec<String> = expected.iter().filter(|e| sd.get(&e.0).is_none()).map(|e| e.0.clone()).collect();
    let ignored: Vec<String> =
        sd.tensors.iter().map(|(k, _)| k.clone()).filter(|k| k.ends_with("num_batches_tracked")).collect();
    let unexpected: Vec<String> = sd
        .tensors
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| !ignored.contains(k) && !expected.iter().any(|e| &e.0 == k))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(ErrorKind::Keys { missing, unexpected });
    }
    let shapes: Vec<_> = expected
        .iter()
        .filter_map(|(k, _, shape, _)| {
            let found = &sd.get(k).expect("checked above").shape;
            (found != shape).then(|| (k.clone(), shape.clone(), found.clone()))
        })
        .collect();
    if !shapes.is_empty() {
        return Err(ErrorKind::Shapes(shapes));
    }
    if let Some((k, _)) = sd.tensors.iter().find(|(k, t)| !ignored.contains(k) && !t.dtype.is_float()) {
        return Err(ErrorKind::Malformed(format!("{k} holds integers, a float tensor was expected")));
    }
    let by_key: HashMap<&str, &Decoded> = sd.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut net: Net<B> = spec.init_zeroed(device);
    let Backbone::ResNet32(resnet) = &mut net.backbone else { unreachable!("spec is ResNet-32") };
    assign_resnet(resnet, &by_key, device);
    let mapping = expected
        .into_iter()
        .map(|(file_key, model_path, shape, transposed)| KeyMapping { file_key, model_path, shape, transposed })
        .collect();
    Ok((
        net,
        ImportReport {
            format: sd.format,
            nested_under: sd.nested_under.clone(),
            mapping,
            ignored,
            outside: sd.outside.clone(),
        },
    ))
}

/// The class count and head kind the file's `linear.weight` (and `linear.bias`) imply.
fn check_head_and_classes(spec: &ModelSpec, sd: &StateDict) -> Result<(), ErrorKind> {
    let Some(w) = sd.get("linear.weight") else {
        return Ok(()); // reported with the other missing keys
    };
    if w.shape.len() != 2 {
        return Ok(()); // reported as a shape mismatch
    }
    let file_cosine = sd.get("linear.bias").is_none();
    let name = |cosine: bool| if cosine { "cosine (NormedLinear, resnet32_norm)" } else { "linear" };
    if file_cosine != spec.cosine_head {
        return Err(ErrorKind::Head { found: name(file_cosine), expected: name(spec.cosine_head) });
    }
    // torch's Linear stores [classes, features]; NormedLinear [features, classes].
    let found = if file_cosine { w.shape[1] } else { w.shape[0] };
    if found != spec.num_classes {
        return Err(ErrorKind::ClassCount { found, expected: spec.num_classes });
    }
    Ok(())
}

fn tensor<B: Backend, const D: usize>(t: &Decoded, device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(t.values.clone(), t.shape.clone()), device)
}

fn assign_bn<B: Backend>(bn: &mut BatchNorm2d<B>, prefix: &str, by_key: &HashMap<&str, &Decoded>, device: &B::Device) {
    let get = |name: &str| tensor::<B, 1>(by_key[format!("{prefix}.{name}").as_str()], device);
    bn.gamma = Param::from_tensor(get("weight"));
    bn.beta = Param::from_tensor(get("bias"));
    bn.running_mean = RunningState::new(get("running_mean"));
    bn.running_var = RunningState::new(get("running_var"));
}

fn assign_resnet<B: Backend>(net: &mut ResNet32<B>, by_key: &HashMap<&str, &Decoded>, device: &B::Device) {
    net.conv_1_3x3.weight = Param::from_tensor(tensor(by_key["conv_1_3x3.weight"], device));
    assign_bn(&mut net.bn_1, "bn_1", by_key, device);
    for (i, block) in net.stages.iter_mut().enumerate() {
        let file = format!("stage_{}.{}", i / 5 + 1, i % 5);
        block.conv_a.weight = Param::from_tensor(tensor(by_key[format!("{file}.conv_a.weight").as_str()], device));
        block.conv_b.weight = Param::from_tensor(tensor(by_key[format!("{file}.conv_b.weight").as_str()], device));
        assign_bn(&mut block.bn_a, &format!("{file}.bn_a"), by_key, device);
        assign_bn(&mut block.bn_b, &format!("{file}.bn_b"), by_key, device);
    }
    match &mut net.head {
        Head::Cosine(head) => head.weight = Param::from_tensor(tensor(by_key["linear.weight"], device)),
        Head::Linear(head) => {
            head.weight = Param::from_tensor(tensor(&by_key["linear.weight"].transposed(), device));
            head.bias = Some(Param::from_tensor(tensor(by_key["linear.bias"], device)));
        }
    }
}
