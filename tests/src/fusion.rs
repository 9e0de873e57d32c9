//! A small burn-train program for checkpoint tests on any backend: an MLP classifying
//! synthetic vectors, trained by `SupervisedTraining` with burn-train's file checkpointer
//! (full precision, so a resumed run can be compared bit for bit), through burn-train's
//! own loop or `m2m_burn_plugin::hook::fusion_safe`. `examples/fusion_checkpoint.rs` and
//! the GPU-path tests run it.

use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Initializer, Linear, LinearConfig, Relu};
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::metric::LossMetric;
use burn::train::{ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep};
use m2m_core::translation::int_tensor;

const FEATURES: usize = 64;
const CLASSES: usize = 10;

/// Two linear layers with a ReLU between them.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    a: Linear<B>,
    b: Linear<B>,
    relu: Relu,
}

impl<B: Backend> Mlp<B> {
    fn build(initializer: Initializer, device: &B::Device) -> Self {
        let layer = |i, o| LinearConfig::new(i, o).with_initializer(initializer.clone()).init(device);
        let mlp = Self { a: layer(FEATURES, 128), b: layer(128, CLASSES), relu: Relu::new() };
        m2m_burn_plugin::model::materialize(&mlp);
        mlp
    }

    /// The same weights on every backend and in every run: drawn on the CPU from `seed`
    /// under `m2m_core::seed::with_seed`, then moved exactly.
    pub fn seeded(seed: u64, device: &B::Device) -> Self {
        use burn::record::{BinBytesRecorder, Recorder};
        let cpu = Default::default();
        let drawn = m2m_core::seed::with_seed::<burn::backend::Flex, _>(&cpu, seed, || {
            Mlp::<burn::backend::Flex>::build(Initializer::KaimingUniform { gain: 1.0, fan_out_only: false }, &cpu)
        });
        let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
        let bytes = recorder.record(drawn.into_record(), ()).unwrap();
        Self::build(Initializer::Zeros, device).load_record(recorder.load(bytes, device).unwrap())
    }

    fn classify(&self, batch: VectorBatch<B>) -> ClassificationOutput<B> {
        let logits = self.b.forward(self.relu.forward(self.a.forward(batch.x)));
        let loss = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), batch.y.clone());
        ClassificationOutput::new(loss, logits, batch.y)
    }
}

/// A labelled vector.
#[derive(Clone, Debug)]
pub struct Vector {
    x: Vec<f32>,
    y: usize,
}

#[derive(Clone, Debug)]
pub struct VectorBatch<B: Backend> {
    x: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
}

#[derive(Clone)]
struct VectorBatcher;

impl<B: Backend> Batcher<B, Vector, VectorBatch<B>> for VectorBatcher {
    fn batch(&self, items: Vec<Vector>, device: &B::Device) -> VectorBatch<B> {
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|v| v.x.iter().copied()).collect();
        let y: Vec<usize> = items.iter().map(|v| v.y).collect();
        VectorBatch { x: Tensor::from_data(TensorData::new(x, [n, FEATURES]), device), y: int_tensor(&y, device) }
    }
}

impl<B: AutodiffBackend> TrainStep for Mlp<B> {
    type Input = VectorBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: VectorBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let item = self.classify(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<B: Backend> InferenceStep for Mlp<B> {
    type Input = VectorBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: VectorBatch<B>) -> ClassificationOutput<B> {
        self.classify(batch)
    }
}

/// `n` vectors whose class is where their largest of the first ten values is.
fn vectors(n: usize, seed: u64) -> Vec<Vector> {
    let bytes = crate::bytes(n * FEATURES, seed);
    (0..n)
        .map(|i| {
            let x: Vec<f32> = bytes[i * FEATURES..(i + 1) * FEATURES].iter().map(|&b| b as f32 / 255.0).collect();
            let y = (0..CLASSES).max_by(|&a, &b| x[a].total_cmp(&x[b])).unwrap();
            Vector { x, y }
        })
        .collect()
}

/// Which training loop runs the epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingLoop {
    /// burn-train's default single-device strategy.
    Burn,
    /// `m2m_burn_plugin::hook::fusion_safe`.
    FusionSafe,
}

/// Trains the seeded MLP for `epochs` epochs into `dir` (checkpoints in `dir/checkpoint`),
/// resuming from checkpoint `resume` when given; returns the trained weights.
pub fn train<B: AutodiffBackend>(
    dir: &Path,
    epochs: usize,
    resume: Option<usize>,
    training_loop: TrainingLoop,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let train = DataLoaderBuilder::new(VectorBatcher).batch_size(32).build(InMemDataset::new(vectors(512, 1)));
    let valid = DataLoaderBuilder::new(VectorBatcher).batch_size(64).build(InMemDataset::new(vectors(128, 2)));
    let mut training = SupervisedTraining::new(dir, train, valid)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .with_file_checkpointer(NamedMpkFileRecorder::<FullPrecisionSettings>::new())
        .with_application_logger(None)
        .num_epochs(epochs);
    if training_loop == TrainingLoop::FusionSafe {
        training = training.with_training_strategy(m2m_burn_plugin::hook::fusion_safe(dir));
    }
    if let Some(n) = resume {
        training = training.checkpoint(n);
    }
    let momentum = MomentumConfig::new().with_momentum(0.9);
    let optimizer = SgdConfig::new().with_momentum(Some(momentum)).init::<B, Mlp<B>>();
    let result = training.launch(Learner::new(Mlp::<B>::seeded(7, device), optimizer, 0.05));
    crate::snapshot(&result.model)
}
