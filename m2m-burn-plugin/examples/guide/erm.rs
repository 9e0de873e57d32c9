//! g for the guide: the guide's model trained without M2m, as the guide did before the
//! diff (burn-train's loop, a shuffled loader, the same metrics), saved where the guide
//! with M2m looks for it (`{artifact_dir}-erm/model`).

use crate::data::MnistBatcher;
use crate::training::TrainingConfig;
use crate::vision::MnistDataset;
use burn::data::dataloader::DataLoaderBuilder;
use burn::module::Module;
use burn::record::CompactRecorder;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};

/// Trains g into `dir` (its model file: `{dir}/model`), initialised from `config.seed`.
pub fn train_g<B: AutodiffBackend>(dir: &str, config: &TrainingConfig, device: B::Device) {
    std::fs::create_dir_all(dir).expect("g's folder");
    let batcher = MnistBatcher::default();
    let loader = DataLoaderBuilder::new(batcher.clone()).batch_size(config.batch_size).shuffle(config.seed);
    let train = loader.num_workers(config.num_workers).build(MnistDataset::train());
    let test = DataLoaderBuilder::new(batcher).batch_size(config.batch_size).build(MnistDataset::test());
    let training = SupervisedTraining::new(dir, train, test)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .num_epochs(config.num_epochs);
    let model = m2m_core::seed::with_seed::<B, _>(&device, config.seed, || {
        let model = config.model.init::<B>(&device);
        m2m_burn_plugin::model::materialize(&model);
        model
    });
    let result = training.launch(Learner::new(model, config.optimizer.init(), config.learning_rate));
    result.model.save_file(format!("{dir}/model"), &CompactRecorder::new()).expect("g is saved");
}
