//! burn's guide example with M2m added (`examples/guide`, the diff in docs/m2m.md)
//! trains on long-tailed Fashion-MNIST and M2m accepts translations in it.

#[path = "../examples/guide/data.rs"]
mod data;
#[path = "../examples/guide/model.rs"]
mod model;
#[path = "../examples/guide/training.rs"]
mod training;

use burn::module::Module;
use burn::optim::AdamConfig;
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::DatasetName;
use m2m_burn_plugin::hook::M2mSettings;
use m2m_core::translation::TranslationParams;

#[test]
fn the_guide_trains_with_m2m_and_accepts_translations() {
    guide::<Cpu>(Default::default());
}

/// The same on burn's wgpu backend (lavapipe in CI; skipped, saying so, without an
/// adapter unless `M2M_REQUIRE_GPU` names `wgpu`), without burn's fusion: the guide trains
/// through burn-train's own loop, whose asynchronous checkpointer crashes on fusion
/// backends (tracel-ai/burn#4347; docs/backends.md, `examples/fusion_checkpoint.rs`).
/// `m2m train`'s loop waits for its checkpoints and runs with fusion (tests/gpu_cli.rs).
#[cfg(feature = "wgpu")]
#[test]
fn the_guide_trains_with_m2m_on_wgpu_without_fusion() {
    use m2m_burn_plugin::backend::{probe_wgpu, wgpu_device, BackendChoice, WgpuUnfused};
    let text = std::env::var("M2M_TEST_WGPU").unwrap_or_else(|_| "wgpu".into());
    let Ok(BackendChoice::Wgpu { adapter }) = text.parse() else { panic!("M2M_TEST_WGPU={text}: not a wgpu adapter") };
    if let Err(e) = probe_wgpu(adapter) {
        let required = std::env::var("M2M_REQUIRE_GPU").unwrap_or_default();
        assert!(!required.split(',').any(|n| n.trim() == "wgpu"), "wgpu is required but cannot run: {e:#}");
        eprintln!("skipped: wgpu cannot run here: {e:#}");
        return;
    }
    guide::<WgpuUnfused>(wgpu_device(adapter));
}

/// burn's guide, then the guide with M2m, on backend `B`.
fn guide<B: burn::tensor::backend::AutodiffBackend>(device: B::Device) {
    let dir = DatasetName::FashionMnist.locate(None).expect("Fashion-MNIST (scripts/env.sh installs it)");
    let (train, test) = data::fashion_mnist_lt(&dir, 500, 10.0, 50).unwrap();
    assert_eq!(train.len(), 2040);
    let out = tempfile::tempdir().unwrap();
    let config = |epochs| {
        training::TrainingConfig::new(model::ModelConfig::new(10, 512), AdamConfig::new())
            .with_num_epochs(epochs)
            .with_learning_rate(1e-3)
            .with_num_workers(1)
    };
    let g_dir = out.path().join("g");
    training::train::<B>(g_dir.to_str().unwrap(), config(6), device.clone(), train.clone(), test.clone());
    let g = model::ModelConfig::new(10, 512)
        .init::<B>(&device)
        .load_file(g_dir.join("model"), &burn::record::CompactRecorder::new(), &device)
        .unwrap();

    let translation = TranslationParams::default().with_gamma(0.5).check().unwrap();
    let f_dir = out.path().join("f");
    let settings =
        M2mSettings::new(1, 64).with_seed(1).with_translation(translation).with_tensorboard(f_dir.join("tensorboard"));
    let epochs = training::train_m2m::<B>(f_dir.to_str().unwrap(), config(3), device, train, test, g, settings);
    assert_eq!(epochs.iter().map(|e| e.epoch).collect::<Vec<_>>(), vec![1, 2], "M2m runs from epoch 1 of 3");
    for e in &epochs {
        assert_eq!(e.stats.slots, 2040, "every image slot of the epoch went through M2m");
        assert!(e.stats.total_attempts() > 500, "{:?}", e.stats);
        assert_eq!(e.stats.attempts[0], 0, "the largest class is never a target");
    }
    let accepted: u64 = epochs.iter().map(|e| e.stats.total_accepted()).sum();
    assert!(accepted > 0, "no translation accepted: {epochs:?}");
    // The trained f is the guide's plain model, saved where the guide saves it.
    assert!(f_dir.join("model.mpk").is_file());
    // burn-train's metrics in TensorBoard, through the one line of the guide.
    if let Some(read) = m2m_tests::read_tensorboard(&f_dir.join("tensorboard")) {
        let run = &read["runs"]["."];
        let steps = |tag: &str| -> Vec<i64> {
            let points = run["scalars"][tag].as_array().unwrap_or_else(|| panic!("no {tag}: {:?}", run["tags"]));
            points.iter().map(|p| p[0].as_i64().unwrap()).collect()
        };
        for split in ["train", "valid"] {
            assert_eq!(steps(&format!("epoch/{split}/Loss")), vec![1, 2, 3], "{split}: one point per epoch");
            assert_eq!(steps(&format!("epoch/{split}/Accuracy")), vec![1, 2, 3]);
            let per_iteration = steps(&format!("{split}/Loss"));
            assert!(per_iteration.len() > 3 && per_iteration.windows(2).all(|w| w[1] == w[0] + 1), "{per_iteration:?}");
        }
        // M2m's own statistics through the hook (epochs 1 and 2, 0-based).
        assert_eq!(steps("m2m/accepted"), vec![1, 2]);
        let accepted: Vec<f64> =
            run["scalars"]["m2m/accepted"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
        assert_eq!(accepted, epochs.iter().map(|e| e.stats.total_accepted() as f64).collect::<Vec<_>>());
    }
}
