//! burn's guide with M2m (`examples/guide`: burn's files with the diff of docs/m2m.md) on
//! long-tailed Fashion-MNIST, on burn's defaults: the hook, burn-train's file
//! checkpointer and, on wgpu and CUDA, kernel fusion. The guide trains in a child process
//! that is killed once its second epoch's checkpoint appears; a second child resumes from
//! burn's checkpoint of the first epoch with `SupervisedTraining::checkpoint(1)` and
//! finishes, M2m's epoch included. On the CPU backend always; on wgpu (lavapipe in CI)
//! and CUDA (scripts/gpu-check.sh) where such a device runs.

#[path = "../examples/guide/data.rs"]
#[rustfmt::skip]
mod data;
#[path = "../examples/guide/erm.rs"]
mod erm;
#[path = "../examples/guide/model.rs"]
#[rustfmt::skip]
mod model;
#[path = "../examples/guide/training.rs"]
#[rustfmt::skip]
mod training;
#[path = "../examples/guide/vision.rs"]
mod vision;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoaderBuilder;
use burn::module::Module;
use burn::optim::AdamConfig;
use burn::record::CompactRecorder;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::DatasetName;
use m2m_burn_plugin::hook::{fusion_safe, M2mHook, M2mSettings};
use m2m_burn_plugin::learning_checkpoint::complete_checkpoints;
use m2m_burn_plugin::tensorboard::TensorBoardLogger;

/// Which part of the guide a child process runs (`train` or `resume`); unset in the parent.
const LEG: &str = "M2M_GUIDE_LEG";
const EPOCHS: usize = 3;

fn config() -> training::TrainingConfig {
    training::TrainingConfig::new(model::ModelConfig::new(10, 512), AdamConfig::new())
        .with_num_epochs(EPOCHS)
        .with_learning_rate(1e-3)
        .with_num_workers(1)
}

fn use_data() {
    let dir = DatasetName::FashionMnist.locate(None).expect("Fashion-MNIST (scripts/env.sh installs it)");
    let (train, _) = vision::use_fashion_mnist_lt(&dir, 500, 10.0, 50).unwrap();
    assert_eq!(train, 2040);
}

/// What a program adds to burn's guide to resume: `.checkpoint(n)` and, for the hook,
/// `resuming_after(n)` (and it keeps the folder instead of emptying it).
fn resume<B: AutodiffBackend>(artifact_dir: &str, config: training::TrainingConfig, device: B::Device, n: usize) {
    let g = config.model.init::<B>(&device);
    let g = g.load_file(format!("{artifact_dir}-erm/model"), &CompactRecorder::new(), &device).unwrap();
    let settings = M2mSettings::new(config.num_epochs * 4 / 5, config.batch_size).with_seed(config.seed);
    let settings = settings.normalized([0.1307], [0.3081]).with_tensorboard(artifact_dir).resuming_after(n);
    let batcher = data::MnistBatcher::default();
    let labels = |item: &vision::MnistItem| item.label as usize;
    let hook = M2mHook::new(settings, g, vision::MnistDataset::train(), batcher.clone(), labels, &device).unwrap();
    let test = DataLoaderBuilder::new(batcher).batch_size(config.batch_size).build(vision::MnistDataset::test());
    let training = SupervisedTraining::new(artifact_dir, hook.dataloader(), test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_file_checkpointer(CompactRecorder::new())
        .with_training_strategy(fusion_safe(artifact_dir))
        .with_metric_logger(TensorBoardLogger::new(artifact_dir))
        .num_epochs(config.num_epochs)
        .checkpoint(n);
    let model = hook.model(config.model.init::<B>(&device)).unwrap();
    let result = training.launch(Learner::new(model, config.optimizer.init(), config.learning_rate));
    result.model.save_file(format!("{artifact_dir}/model"), &CompactRecorder::new()).unwrap();
}

/// The child processes' entry: runs `$M2M_GUIDE_LEG` of the guide in `$M2M_GUIDE_DIR` on
/// `$M2M_GUIDE_BACKEND`. In a plain test run there is no leg to run.
#[test]
fn guide_leg() {
    let Ok(leg) = std::env::var(LEG) else { return };
    let dir = std::env::var("M2M_GUIDE_DIR").unwrap();
    use_data();
    match std::env::var("M2M_GUIDE_BACKEND").unwrap().as_str() {
        "cpu" => run_leg::<Cpu>(&leg, &dir, Default::default()),
        // CubeCL's caches where m2m keeps them, not in the working directory.
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            m2m_burn_plugin::backend::configure_cubecl_cache();
            run_leg::<m2m_burn_plugin::backend::Wgpu>(&leg, &dir, wgpu_device())
        }
        #[cfg(feature = "cuda")]
        "cuda" => {
            m2m_burn_plugin::backend::configure_cubecl_cache();
            run_leg::<m2m_burn_plugin::backend::Cuda>(&leg, &dir, Default::default())
        }
        other => panic!("M2M_GUIDE_BACKEND={other}: not a backend of this build"),
    }
}

fn run_leg<B: AutodiffBackend>(leg: &str, dir: &str, device: B::Device) {
    match leg {
        "train" => training::train::<B>(dir, config(), device),
        "resume" => resume::<B>(dir, config(), device, 1),
        other => panic!("{LEG}={other}"),
    }
}

/// Trains g on the CPU, then the guide with M2m on `backend` in a child process killed
/// after its second epoch's checkpoint appears, then resumes it from the first.
fn killed_and_resumed(backend: &str) {
    use_data();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("guide");
    let g_config = config().with_num_epochs(4);
    erm::train_g::<Cpu>(&format!("{}-erm", dir.display()), &g_config, Default::default());
    let leg = |name: &str| {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child.args(["--exact", "guide_leg", "--nocapture", "--test-threads", "1"]);
        child.env(LEG, name).env("M2M_GUIDE_DIR", &dir).env("M2M_GUIDE_BACKEND", backend);
        child.stdin(std::process::Stdio::null());
        child
    };
    let mut first = leg("train").spawn().unwrap();
    let checkpoints = dir.join("checkpoint");
    let started = Instant::now();
    while !complete_checkpoints(&checkpoints).contains(&1) || !has_file(&checkpoints, "model-2") {
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the guide ended ({status}) before its second epoch's checkpoint appeared");
        }
        assert!(started.elapsed() < Duration::from_secs(1800), "no second checkpoint after 30 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!dir.join("model.mpk").exists(), "killed before the end");

    let resumed = leg("resume").output().unwrap();
    let log = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "the resumed guide failed:\n{log}");
    assert!(!log.contains("Should have handle"), "{log}");
    assert_eq!(complete_checkpoints(&checkpoints).last(), Some(&EPOCHS));
    assert!(dir.join("model.mpk").is_file(), "the trained model is saved where the guide saves it");
    check_tensorboard(&dir);
}

fn has_file(dir: &Path, prefix: &str) -> bool {
    let named = |e: std::fs::DirEntry| e.file_name().to_string_lossy().starts_with(&format!("{prefix}."));
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(named)
}

/// burn-train's metrics of every epoch and M2m's statistics of its epoch (the last, 0-based
/// 2) in TensorBoard, through the guide's two lines.
fn check_tensorboard(dir: &Path) {
    let Some(read) = m2m_tests::read_tensorboard(dir) else { return };
    let run = &read["runs"]["."];
    let steps = |tag: &str| -> Vec<i64> {
        let points = run["scalars"][tag].as_array().unwrap_or_else(|| panic!("no {tag}: {:?}", run["tags"]));
        let mut steps: Vec<i64> = points.iter().map(|p| p[0].as_i64().unwrap()).collect();
        steps.dedup();
        steps
    };
    for split in ["train", "valid"] {
        // Epoch 2 is logged twice: by the killed run and by the resumed one.
        let epochs = steps(&format!("epoch/{split}/Loss"));
        assert_eq!(epochs.iter().max(), Some(&(EPOCHS as i64)), "{split}: {epochs:?}");
        assert!((1..=EPOCHS as i64).all(|e| epochs.contains(&e)), "{split}: {epochs:?}");
    }
    assert_eq!(steps("m2m/attempts"), vec![2], "M2m ran in the last epoch only");
    let attempts = run["scalars"]["m2m/attempts"][0][1].as_f64().unwrap();
    assert!(attempts > 500.0, "M2m translated the class-balanced batches: {attempts} attempts");
}

#[test]
fn the_guide_with_m2m_is_killed_and_resumes_on_the_cpu() {
    killed_and_resumed("cpu");
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> burn::backend::wgpu::WgpuDevice {
    use m2m_burn_plugin::backend::BackendChoice;
    let text = std::env::var("M2M_TEST_WGPU").unwrap_or_else(|_| "wgpu".into());
    let Ok(BackendChoice::Wgpu { adapter }) = text.parse() else { panic!("M2M_TEST_WGPU={text}: not a wgpu adapter") };
    m2m_burn_plugin::backend::wgpu_device(adapter)
}

/// On wgpu with burn's fusion (lavapipe in CI): burn-train's own loop crashes there at its
/// first checkpoint (tracel-ai/burn#4347); the guide's `fusion_safe` line avoids it.
#[cfg(feature = "wgpu")]
#[test]
fn the_guide_with_m2m_is_killed_and_resumes_on_fused_wgpu() {
    use m2m_burn_plugin::backend::{probe_wgpu, BackendChoice};
    let text = std::env::var("M2M_TEST_WGPU").unwrap_or_else(|_| "wgpu".into());
    let Ok(BackendChoice::Wgpu { adapter }) = text.parse() else { panic!("M2M_TEST_WGPU={text}: not a wgpu adapter") };
    if let Err(e) = probe_wgpu(adapter) {
        let required = std::env::var("M2M_REQUIRE_GPU").unwrap_or_default();
        assert!(!required.split(',').any(|n| n.trim() == "wgpu"), "wgpu is required but cannot run: {e:#}");
        eprintln!("skipped: wgpu cannot run here: {e:#}");
        return;
    }
    killed_and_resumed("wgpu");
}

/// On CUDA with burn's fusion, where a GPU runs (scripts/gpu-check.sh).
#[cfg(feature = "cuda")]
#[test]
fn the_guide_with_m2m_is_killed_and_resumes_on_fused_cuda() {
    if let Err(e) = m2m_burn_plugin::backend::probe_cuda(0) {
        let required = std::env::var("M2M_REQUIRE_GPU").unwrap_or_default();
        assert!(!required.split(',').any(|n| n.trim() == "cuda"), "CUDA is required but cannot run: {e:#}");
        eprintln!("skipped: CUDA cannot run here: {e:#}");
        return;
    }
    killed_and_resumed("cuda");
}
