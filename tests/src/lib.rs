//! Helpers shared by the workspace-level integration tests: writing small data sets in
//! the official file formats.

use std::io::Write;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use m2m_burn_plugin::data::{cifar, idx};
use m2m_burn_plugin::run_dir::EpochRecord;

pub mod fusion;
pub mod torch_files;

/// Runs `c` (an `m2m` command), asserts it succeeded, and returns its stdout and stderr
/// (the failure message shows both).
pub fn run_ok(c: &mut std::process::Command) -> String {
    let out = c.output().unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{c:?} failed:\n{text}");
    text
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Writes an MNIST-style folder: `per_class_train` / `per_class_test` images per class
/// (28x28, labels interleaved), gzipped or raw. Images of class k are brighter with k, so
/// that a small network learns them in a few steps.
pub fn write_idx_dataset(dir: &Path, per_class_train: usize, per_class_test: usize, gz: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, per_class) in [("train", per_class_train), ("t10k", per_class_test)] {
        let n = per_class * 10;
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let noise = bytes(n * 784, n as u64);
        let pixels: Vec<u8> = noise
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                // class k has brightness ~25k plus noise: learnable through global pooling
                let k = labels[j / 784];
                k * 25 + v / 16
            })
            .collect();
        let (img, lab) = idx::encode(28, 28, &pixels, &labels);
        let (img, lab) = if gz { (gzip(&img), gzip(&lab)) } else { (img, lab) };
        let ext = if gz { ".gz" } else { "" };
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{ext}")), img).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), lab).unwrap();
    }
}

/// Writes a CIFAR binary folder with `per_file` records in each file.
pub fn write_cifar_dataset(dir: &Path, kind: cifar::CifarKind, per_file: usize) -> Vec<Vec<u8>> {
    std::fs::create_dir_all(dir).unwrap();
    let mut all_labels = Vec::new();
    for (i, name) in kind.files(true).iter().chain(kind.files(false)).enumerate() {
        let labels: Vec<u8> = (0..per_file).map(|j| ((j * 7 + i) % kind.num_classes()) as u8).collect();
        let pixels = bytes(per_file * cifar::IMAGE_BYTES, i as u64 + 1);
        std::fs::write(dir.join(name), cifar::encode(kind, &pixels, &labels)).unwrap();
        all_labels.push(labels);
    }
    all_labels
}

struct Snapshot(Vec<Vec<f32>>);

impl<B: Backend> ModuleVisitor<B> for Snapshot {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        self.0.push(p.val().into_data().to_vec().unwrap());
    }
}

/// Every float tensor of a module (parameters and BatchNorm running statistics), for
/// "nothing changed" checks.
pub fn snapshot<B: Backend, M: Module<B>>(m: &M) -> Vec<Vec<f32>> {
    let mut s = Snapshot(Vec::new());
    m.visit(&mut s);
    s.0
}

struct ShapedSnapshot(Vec<(Vec<usize>, Vec<f32>)>);

impl<B: Backend> ModuleVisitor<B> for ShapedSnapshot {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        let t = p.val();
        self.0.push((t.dims().to_vec(), t.into_data().to_vec().unwrap()));
    }
}

/// Every float tensor of a module with its shape, in visiting order.
pub fn snapshot_with_shapes<B: Backend, M: Module<B>>(m: &M) -> Vec<(Vec<usize>, Vec<f32>)> {
    let mut s = ShapedSnapshot(Vec::new());
    m.visit(&mut s);
    s.0
}

/// The per-epoch records of a run directory.
/// Epochs a run directory has recorded so far (lines of its `metrics.jsonl`; 0 before
/// the first), for tests that act while a run is training.
pub fn epochs_done(run: &Path) -> usize {
    std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
}

pub fn records(run: &Path) -> Vec<EpochRecord> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A tiny recipe over an MNIST-style folder written by [`write_idx_dataset`] (40 training
/// images per class before imbalance): the small CNN, batch 32, `epochs` epochs. Meant
/// as a suite base; it has no `name`/`output_dir`/`seed`, which suites set.
pub fn tiny_suite_base(data: &Path, epochs: usize) -> String {
    format!(
        r#"(
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 4.0, selection: SeededShuffle,
              data_seed: 3, eval_split: ValFromTest(val_fraction: 0.2),
              augmentation: (crop_padding: 2, horizontal_flip: false)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
    schedule: (epochs: {epochs}, milestones: []),
    batch_size: 32,
    eval_batch_size: 64,
)"#,
        data.display()
    )
}

/// A tensor of `shape` with values drawn from `distribution` by a generator seeded with
/// `seed` on the host, then uploaded: the same values in every run and on every thread,
/// whatever else draws from burn's process-wide generator meanwhile (see
/// [`m2m_core::seed::with_seed`]). `Uniform(low, high)` and `Normal(mean, std)` only.
pub fn random<B: Backend, const D: usize>(
    shape: [usize; D],
    distribution: Distribution,
    seed: u64,
    device: &B::Device,
) -> Tensor<B, D> {
    use rand::{RngExt, SeedableRng};
    let mut rng = m2m_core::seed::ChaCha12Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let values: Vec<f32> = match distribution {
        Distribution::Uniform(low, high) => (0..n).map(|_| rng.random_range(low..high) as f32).collect(),
        Distribution::Normal(mean, std) => (0..n)
            .map(|_| {
                // Box-Muller: u1 in (0, 1] keeps the logarithm finite.
                let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
                (mean + std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
            })
            .collect(),
        other => panic!("m2m_tests::random: {other:?} is not supported"),
    };
    Tensor::from_data(burn::tensor::TensorData::new(values, shape), device)
}

/// TensorBoard's own reading of the event files under `logdir`: `tests/tensorboard/read_events.py`
/// run by the python of `M2M_TENSORBOARD_PYTHON` (a virtualenv with the `tensorboard`
/// package; `scripts/tensorboard-venv.sh` makes one and the test command sets it), as JSON
/// (`runs.RUN.{scalars, images, text, hparams, server_view}`). `None`, saying so, where no
/// such python is set, unless `M2M_REQUIRE_TENSORBOARD` is set.
pub fn read_tensorboard(logdir: &Path) -> Option<serde_json::Value> {
    let Some(python) = std::env::var_os("M2M_TENSORBOARD_PYTHON") else {
        assert!(
            std::env::var_os("M2M_REQUIRE_TENSORBOARD").is_none(),
            "M2M_REQUIRE_TENSORBOARD is set but M2M_TENSORBOARD_PYTHON is not"
        );
        eprintln!("skipped: TensorBoard's reader is not set up (M2M_TENSORBOARD_PYTHON; scripts/tensorboard-venv.sh)");
        return None;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tensorboard/read_events.py");
    let out =
        std::process::Command::new(python).arg(script).arg(logdir).output().expect("running TensorBoard's reader");
    assert!(out.status.success(), "TensorBoard's reader failed:\n{}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).expect("the reader prints JSON"))
}

/// A tiny M2m recipe (`DIR/m2m.ron`, run `m2m-tiny` in `DIR/runs`, g in `DIR/g`): 40
/// training images per class of an MNIST-style set cut to ratio 4, the small CNN, M2m from
/// epoch 1 of 3 through a fixed g with gamma ~ 0 (translations are accepted whenever the
/// Bernoulli draw agrees).
pub fn tiny_m2m_recipe(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    write_idx_dataset(&data, 40, 20, false);
    let spec = m2m_burn_plugin::model::ModelSpec {
        architecture: m2m_burn_plugin::model::Architecture::SmallCnn,
        cosine_head: false,
        in_channels: 1,
        num_classes: 10,
        mean: vec![0.1307],
        std: vec![0.3081],
    };
    let g: m2m_burn_plugin::model::Net<m2m_burn_plugin::backend::Cpu> = spec.init_seeded(5, &Default::default());
    m2m_burn_plugin::model::save_classifier(&g, &spec, &dir.join("g/model")).unwrap();
    let recipe = dir.join("m2m.ron");
    std::fs::write(
        &recipe,
        format!(
            r#"(
    name: "m2m-tiny",
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 4.0, selection: FirstInOrder,
              data_seed: 0, eval_split: ValFromTest(val_fraction: 0.2),
              augmentation: (crop_padding: 2, horizontal_flip: false)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
    schedule: (epochs: 3, warmup_epochs: 0, milestones: []),
    batch_size: 32,
    eval_batch_size: 64,
    seed: 3,
    output_dir: "{}",
    m2m: (g: Checkpoint("{}"), gamma: 0.000001, beta: 0.5, steps: 2, from_epoch: 1),
)"#,
            data.display(),
            dir.join("runs").display(),
            dir.join("g/model").display()
        ),
    )
    .unwrap();
    recipe
}

/// Largest absolute difference relative to the largest magnitude of `expected` (absolute
/// where `expected` is all zeros, as a ReLU can make it).
pub fn relative(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = if scale > 0.0 { scale } else { 1.0 };
    actual.iter().zip(expected).fold(0.0f32, |m, (a, e)| m.max((a - e).abs())) / scale
}

/// `|actual - expected| / |expected|` in the L2 norm.
pub fn relative_l2(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let diff: f64 = actual.iter().zip(expected).map(|(a, e)| ((a - e) as f64).powi(2)).sum();
    let norm: f64 = expected.iter().map(|e| (*e as f64).powi(2)).sum();
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt() as f32
}
