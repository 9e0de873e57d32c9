// burn's guide training (examples/guide/src/training.rs at v0.21.0) with M2m's changes,
// marked `// M2m:`. `train` is the guide's own function (it trains g here); `train_m2m`
// is the same function with M2m added: the diff in docs/m2m.md.
use crate::{
    data::{MnistBatch, MnistBatcher, MnistItem},
    model::{Model, ModelConfig},
};
use burn::{
    data::{dataloader::DataLoaderBuilder, dataset::InMemDataset},
    nn::loss::CrossEntropyLossConfig,
    optim::AdamConfig,
    prelude::*,
    record::CompactRecorder,
    tensor::backend::AutodiffBackend,
    train::{
        metric::{AccuracyMetric, LossMetric},
        ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep,
    },
};
// M2m:
use m2m_burn_plugin::hook::{EpochReport, M2mHook, M2mSettings};

impl<B: Backend> Model<B> {
    pub fn forward_classification(&self, images: Tensor<B, 3>, targets: Tensor<B, 1, Int>) -> ClassificationOutput<B> {
        let output = self.forward(images);
        let loss = CrossEntropyLossConfig::new().init(&output.device()).forward(output.clone(), targets.clone());

        ClassificationOutput::new(loss, output, targets)
    }
}

impl<B: AutodiffBackend> TrainStep for Model<B> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let item = self.forward_classification(batch.images, batch.targets);

        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<B: Backend> InferenceStep for Model<B> {
    type Input = MnistBatch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: MnistBatch<B>) -> ClassificationOutput<B> {
        self.forward_classification(batch.images, batch.targets)
    }
}

#[derive(Config, Debug)]
pub struct TrainingConfig {
    pub model: ModelConfig,
    pub optimizer: AdamConfig,
    #[config(default = 10)]
    pub num_epochs: usize,
    #[config(default = 64)]
    pub batch_size: usize,
    #[config(default = 4)]
    pub num_workers: usize,
    #[config(default = 42)]
    pub seed: u64,
    #[config(default = 1.0e-4)]
    pub learning_rate: f64,
}

fn create_artifact_dir(artifact_dir: &str) {
    // Remove existing artifacts before to get an accurate learner summary
    std::fs::remove_dir_all(artifact_dir).ok();
    std::fs::create_dir_all(artifact_dir).ok();
}

/// The guide's `train`, on the given items instead of `MnistDataset::{train, test}()`.
pub fn train<B: AutodiffBackend>(
    artifact_dir: &str,
    config: TrainingConfig,
    device: B::Device,
    train: Vec<MnistItem>,
    test: Vec<MnistItem>,
) {
    create_artifact_dir(artifact_dir);
    config.save(format!("{artifact_dir}/config.json")).expect("Config should be saved successfully");

    B::seed(&device, config.seed);

    let batcher = MnistBatcher::default();

    let dataloader_train = DataLoaderBuilder::new(batcher.clone())
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .num_workers(config.num_workers)
        .build(InMemDataset::new(train));

    let dataloader_test = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .num_workers(config.num_workers)
        .build(InMemDataset::new(test));

    let training = SupervisedTraining::new(artifact_dir, dataloader_train, dataloader_test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_file_checkpointer(CompactRecorder::new())
        .renderer(m2m_burn_plugin::train::LogRenderer::new(std::time::Duration::from_secs(10)))
        .num_epochs(config.num_epochs)
        .summary();

    let model = config.model.init::<B>(&device);
    let result = training.launch(Learner::new(model, config.optimizer.init(), config.learning_rate));

    result
        .model
        .save_file(format!("{artifact_dir}/model"), &CompactRecorder::new())
        .expect("Trained model should be saved successfully");
}

/// The guide's `train` with M2m: `g` is a model trained by `train` (ERM) on the same data.
pub fn train_m2m<B: AutodiffBackend>(
    artifact_dir: &str,
    config: TrainingConfig,
    device: B::Device,
    train: Vec<MnistItem>,
    test: Vec<MnistItem>,
    g: Model<B>,
    m2m: M2mSettings,
) -> Vec<EpochReport> {
    create_artifact_dir(artifact_dir);
    config.save(format!("{artifact_dir}/config.json")).expect("Config should be saved successfully");

    B::seed(&device, config.seed);

    let batcher = MnistBatcher::default();

    // M2m: the hook owns the training loader (natural, then class-balanced order).
    let hook = M2mHook::new(
        m2m,
        g,
        InMemDataset::new(train),
        batcher.clone(),
        |item: &MnistItem| item.label as usize,
        &device,
    )
    .expect("M2m should accept g and the training set");
    let dataloader_train = hook.dataloader();

    let dataloader_test = DataLoaderBuilder::new(batcher)
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .num_workers(config.num_workers)
        .build(InMemDataset::new(test));

    let training = SupervisedTraining::new(artifact_dir, dataloader_train, dataloader_test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_file_checkpointer(CompactRecorder::new())
        // TensorBoard: `tensorboard --logdir ARTIFACT_DIR/tensorboard`.
        .with_metric_logger(m2m_burn_plugin::tensorboard::TensorBoardLogger::new(format!("{artifact_dir}/tensorboard")))
        .renderer(m2m_burn_plugin::train::LogRenderer::new(std::time::Duration::from_secs(10)))
        .num_epochs(config.num_epochs)
        .summary();

    // M2m: the model, wrapped (same record; `result.model` is the plain model).
    let model = hook.model(config.model.init::<B>(&device)).expect("M2m should accept f");
    let result = training.launch(Learner::new(model, config.optimizer.init(), config.learning_rate));

    result
        .model
        .save_file(format!("{artifact_dir}/model"), &CompactRecorder::new())
        .expect("Trained model should be saved successfully");
    hook.epochs()
}
