//! Reproduction: burn-train's asynchronous checkpointer on a fusion backend
//! (tracel-ai/burn#4347), and what `m2m_burn_plugin::hook::fusion_safe` changes.
//!
//! `fusion_checkpoint MODE [STEPS|EPOCHS] [fused|unfused]`, on Autodiff<Wgpu> (fusion on)
//! or the same backend without fusion:
//! - `async`, `sync`, `async-synced`, `async-wait`: a small model trained with SGD +
//!   momentum by hand for STEPS steps, saving the model and optimiser records every 10
//!   steps through burn-train's `AsyncCheckpointer` (what `with_file_checkpointer`
//!   installs) while training goes on; `sync` calls the same `FileCheckpointer` on the
//!   training thread, `async-synced` syncs the backend before saving, `async-wait` waits
//!   for the write before the next step.
//! - `burn-train`: an MLP trained for EPOCHS epochs through `SupervisedTraining` with
//!   `with_file_checkpointer`, on burn-train's own loop.
//! - `fusion-safe`: the same with `.with_training_strategy(fusion_safe(dir))`; it also
//!   resumes a second launch from the checkpoint after half the epochs and checks that it
//!   ends with the same weights: bit for bit without fusion, to within 1e-6 (relative)
//!   with it, where autotuning's kernel picks round differently from run to run.
use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
use burn::backend::{Autodiff, Wgpu};
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Distribution, Tensor};
use burn::train::checkpoint::{AsyncCheckpointer, Checkpointer, FileCheckpointer};

#[derive(Module, Debug)]
struct Mlp<B: burn::tensor::backend::Backend> {
    a: Linear<B>,
    b: Linear<B>,
    relu: Relu,
}

fn main() {
    // CubeCL's caches where m2m keeps them, not in the working directory.
    m2m_burn_plugin::backend::configure_cubecl_cache();
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("async").to_string();
    let steps: usize = args.get(2).map_or(200, |s| s.parse().unwrap());
    match args.get(3).map(String::as_str).unwrap_or("fused") {
        "fused" => run::<Autodiff<Wgpu>>(&mode, steps),
        _ => run::<Autodiff<CubeBackend<WgpuRuntime, f32, i32, u32>>>(&mode, steps),
    }
}

fn run<B: AutodiffBackend>(mode: &str, steps: usize) {
    use m2m_tests::fusion::{train as train_mlp, TrainingLoop};
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    match mode {
        "burn-train" => {
            let w = train_mlp::<B>(dir.path(), steps, None, TrainingLoop::Burn, &device);
            println!("burn-train: {steps} epochs done, checkpoints saved; sum of weights {}", sum(&w));
        }
        "fusion-safe" => {
            let straight = train_mlp::<B>(dir.path(), steps, None, TrainingLoop::FusionSafe, &device);
            let half = tempfile::tempdir().unwrap();
            train_mlp::<B>(half.path(), steps / 2, None, TrainingLoop::FusionSafe, &device);
            let resumed = train_mlp::<B>(half.path(), steps, Some(steps / 2), TrainingLoop::FusionSafe, &device);
            // With fusion, CubeCL's autotuning picks kernels by timing and two picks may
            // round differently: two straight runs differ as much (docs/backends.md).
            let apart = m2m_tests::relative(&resumed.concat(), &straight.concat());
            let how =
                if straight == resumed { "to the same bits".to_string() } else { format!("to within {apart:.1e}") };
            assert!(apart <= 1e-6, "resumed after {} epochs, the weights differ by {apart:.1e} (relative)", steps / 2);
            println!(
                "fusion-safe: {steps} epochs done, checkpoints saved; resumed after {} epochs {how}; sum of weights {}",
                steps / 2,
                sum(&straight)
            );
        }
        _ => train::<B>(mode, steps),
    }
}

fn sum(weights: &[Vec<f32>]) -> f32 {
    weights.iter().flatten().sum()
}

fn train<B: AutodiffBackend>(mode: &str, steps: usize) {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let recorder = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
    let model_ckpt = AsyncCheckpointer::new(FileCheckpointer::new(recorder.clone(), dir.path(), "model"));
    let optim_ckpt = AsyncCheckpointer::new(FileCheckpointer::new(recorder.clone(), dir.path(), "optim"));
    let sync_model = FileCheckpointer::new(recorder.clone(), dir.path(), "model");
    let sync_optim = FileCheckpointer::new(recorder, dir.path(), "optim");
    let mut model = Mlp {
        a: LinearConfig::new(64, 128).init::<B>(&device),
        b: LinearConfig::new(128, 10).init(&device),
        relu: Relu::new(),
    };
    // burn's generator, unseeded: this reproduction is about the crash, not the numbers.
    let mut optim = SgdConfig::new().with_momentum(Some(MomentumConfig::new().with_momentum(0.9))).init::<B, Mlp<B>>();
    for step in 0..steps {
        let x = Tensor::<B, 2>::random([32, 64], Distribution::Normal(0.0, 1.0), &device);
        let y = model.b.forward(model.relu.forward(model.a.forward(x)));
        let loss = y.powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
        if step % 10 == 9 {
            let epoch = step / 10 + 1;
            match mode {
                "async" | "async-synced" | "async-wait" => {
                    if mode == "async-synced" {
                        B::sync(&device).unwrap();
                    }
                    model_ckpt.save(epoch, model.clone().into_record()).unwrap();
                    optim_ckpt.save(epoch, optim.to_record()).unwrap();
                    if mode == "async-wait" {
                        // Queued behind the saves: returns once they are written.
                        let _ = optim_ckpt.restore(epoch, &device);
                    }
                }
                _ => {
                    sync_model.save(epoch, model.clone().into_record()).unwrap();
                    sync_optim.save(epoch, optim.to_record()).unwrap();
                }
            }
        }
    }
    let v: f32 = burn::tensor::ElementConversion::elem(model.valid().a.weight.val().sum().into_scalar());
    println!("{mode}: {steps} steps done, checkpoints saved; sum of weights {v}");
}
