//! Numerical parity of two backends: the same weights (moved as bytes) and the same
//! inputs through both, then relative errors of logits, loss and input gradient. This is
//! what `scripts/gpu-check.sh` runs to compare CUDA with the CPU backend.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};

use crate::model::{Classifier, Mode, ModelSpec, Net};

/// What one backend computes for the fixed weights and inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityOutputs {
    /// Logits in train mode (batch statistics).
    pub logits_train: Vec<f32>,
    /// Mean cross-entropy of those logits.
    pub loss: f32,
    /// Gradient of the loss with respect to the input images.
    pub input_grad: Vec<f32>,
    /// Logits in eval mode (running statistics), as M2m's translation uses them.
    pub logits_eval: Vec<f32>,
    /// Train-mode logits after one SGD step (lr 0.01, momentum 0.9) on that loss.
    pub logits_after_step: Vec<f32>,
}

/// The weights of a model as bytes, to load into a model on another backend.
pub fn weights_to_bytes<B: burn::tensor::backend::Backend>(model: &Net<B>) -> Vec<u8> {
    crate::model::net_to_bytes(model)
}

/// A model of `spec` on backend `B` with the weights in `bytes` ([`weights_to_bytes`]).
pub fn model_from_bytes<B: burn::tensor::backend::Backend>(
    spec: &ModelSpec,
    bytes: &[u8],
    device: &B::Device,
) -> anyhow::Result<Net<B>> {
    crate::model::net_from_bytes(spec, bytes, device).map_err(anyhow::Error::msg)
}

/// Runs the parity workload on backend `B`: `spec` with the weights in `bytes`, images
/// `[n, c, h, w]` from `pixels`, labels `labels`.
pub fn parity_outputs<B: AutodiffBackend>(
    spec: &ModelSpec,
    bytes: &[u8],
    pixels: &[f32],
    shape: [usize; 4],
    labels: &[usize],
    device: &B::Device,
) -> anyhow::Result<ParityOutputs> {
    let model: Net<B> = model_from_bytes(spec, bytes, device)?;
    let to_vec = |t: Tensor<B::InnerBackend, 2>| t.into_data().to_vec::<f32>().expect("f32 logits");
    let x = Tensor::<B, 4>::from_data(TensorData::new(pixels.to_vec(), shape), device).require_grad();
    let y = m2m_core::translation::int_tensor::<B>(labels, device);
    let logits = model.logits(x.clone(), Mode::Train);
    let loss = CrossEntropyLossConfig::new().init(device).forward(logits.clone(), y.clone());
    let mut grads = loss.backward();
    let input_grad = x.grad_remove(&mut grads).expect("the input requires a gradient");
    let params = GradientsParams::from_grads(grads, &model);
    let logits_eval = model.logits(x.clone().detach(), Mode::Eval).inner();
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .init::<B, Net<B>>();
    let stepped = optim.step(0.01, model, params);
    let after = stepped.logits(x.detach(), Mode::Train).inner();
    Ok(ParityOutputs {
        logits_train: to_vec(logits.inner()),
        loss: loss.inner().into_scalar().elem::<f32>(),
        input_grad: input_grad.into_data().to_vec::<f32>().expect("f32 gradient"),
        logits_eval: to_vec(logits_eval),
        logits_after_step: to_vec(after),
    })
}

/// `||a - b|| / ||b||` (0 when both are zero).
pub fn relative_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared tensors differ in size");
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt();
    let norm: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 {
        diff
    } else {
        diff / norm
    }
}

/// Relative errors of `a` against the reference `b`, by name.
pub fn compare(a: &ParityOutputs, b: &ParityOutputs) -> Vec<(&'static str, f64)> {
    vec![
        ("logits (train mode)", relative_error(&a.logits_train, &b.logits_train)),
        ("loss", relative_error(&[a.loss], &[b.loss])),
        ("input gradient", relative_error(&a.input_grad, &b.input_grad)),
        ("logits (eval mode)", relative_error(&a.logits_eval, &b.logits_eval)),
        ("logits after one SGD step", relative_error(&a.logits_after_step, &b.logits_after_step)),
    ]
}
