//! SGD momentum buffers saved next to a network (the reference's `ckpt['optimizer']`,
//! torch's `optimizer.state_dict()`): `state` maps a parameter id to its
//! `momentum_buffer`, and `param_groups[*].params` lists those ids in the order of
//! `model.parameters()`, which is the state dict's order without its buffers.

use std::collections::HashMap;

use super::pickle::Value;
use super::reference::trainable_keys;
use super::{Decoded, ErrorKind, StateDict};
use crate::model::ModelSpec;

/// The momentum buffers of a file, by the network key of their parameter, with their
/// file shapes. `None` when the file holds no optimizer state.
pub fn momentum_buffers(sd: &StateDict, spec: &ModelSpec) -> Result<Option<HashMap<String, Decoded>>, ErrorKind> {
    let Some(opt) = sd.container.root.get("optimizer") else {
        return Ok(None);
    };
    let bad = |what: &str| ErrorKind::Malformed(format!("optimizer state: {what}"));
    let Some(Value::List(groups)) = opt.get("param_groups") else {
        return Err(bad("no param_groups list"));
    };
    let mut ids = Vec::new();
    for g in groups {
        match g.get("params") {
            Some(Value::List(p)) => {
                for id in p {
                    ids.push(id.as_int().ok_or_else(|| bad("a parameter id is not an integer"))?);
                }
            }
            _ => return Err(bad("a parameter group without its params list")),
        }
    }
    let keys = trainable_keys(spec);
    if ids.len() != keys.len() {
        return Err(bad(&format!("it lists {} parameters, ResNet-32 has {}", ids.len(), keys.len())));
    }
    let Some(Value::Dict(state)) = opt.get("state") else {
        return Err(bad("no state dict"));
    };
    let mut out = HashMap::new();
    for (key, id) in keys.iter().zip(ids) {
        let entry = state.iter().rev().find(|(k, _)| k.as_int() == Some(id)).map(|(_, v)| v);
        let Some(Value::Tensor(t)) = entry.and_then(|e| e.get("momentum_buffer")) else {
            continue; // a parameter that has not been stepped yet has no buffer
        };
        let decoded = sd.container.decode(t).map_err(|e| bad(&format!("momentum of {key}: {e}")))?;
        let want = &sd.get(key).ok_or_else(|| bad(&format!("momentum for {key}, which the network lacks")))?.shape;
        if &decoded.shape != want {
            return Err(ErrorKind::Shapes(vec![(format!("optimizer momentum of {key}"), want.clone(), decoded.shape)]));
        }
        out.insert(key.clone(), decoded);
    }
    Ok(Some(out))
}
