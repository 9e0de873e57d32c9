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
    let dir = DatasetName::FashionMnist.locate(None).expect("Fashion-MNIST (scripts/env.sh installs it)");
    let (train, test) = data::fashion_mnist_lt(&dir, 500, 10.0, 50).unwrap();
    assert_eq!(train.len(), 2040);
    let out = tempfile::tempdir().unwrap();
    let device = Default::default();
    let config = |epochs| {
        training::TrainingConfig::new(model::ModelConfig::new(10, 512), AdamConfig::new())
            .with_num_epochs(epochs)
            .with_learning_rate(1e-3)
            .with_num_workers(1)
    };
    let g_dir = out.path().join("g");
    training::train::<Cpu>(g_dir.to_str().unwrap(), config(6), device, train.clone(), test.clone());
    let g = model::ModelConfig::new(10, 512)
        .init::<Cpu>(&device)
        .load_file(g_dir.join("model"), &burn::record::CompactRecorder::new(), &device)
        .unwrap();

    let translation = TranslationParams::default().with_gamma(0.5).check().unwrap();
    let settings = M2mSettings::new(1, 64).with_seed(1).with_translation(translation);
    let f_dir = out.path().join("f");
    let epochs = training::train_m2m::<Cpu>(f_dir.to_str().unwrap(), config(3), device, train, test, g, settings);
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
}
