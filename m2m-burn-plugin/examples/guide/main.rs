//! burn's guide example (examples/guide at v0.21.0) with M2m added, on long-tailed
//! Fashion-MNIST read from local files. Trains g with the guide's own `train`, then f
//! with `train_m2m` (the guide's function plus the diff shown in docs/m2m.md), and prints
//! what M2m did in each epoch.
//!
//! `cargo run --release --example guide -- [FASHION_MNIST_DIR] [OUT_DIR]`
//! (defaults: $M2M_DATA or Debian's /usr/share/datasets/fashion-mnist, a temporary folder).

mod data;
mod model;
mod training;

use burn::optim::AdamConfig;
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::hook::M2mSettings;
use m2m_core::translation::TranslationParams;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    // The folder given, else where m2m finds Fashion-MNIST ($M2M_DATA, Debian's package).
    let data_dir = m2m_burn_plugin::data::DatasetName::FashionMnist
        .locate(args.next().map(std::path::PathBuf::from).as_deref())?;
    let out = args.next().map(std::path::PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("m2m-guide"));
    let device = Default::default();
    // 500 images of class 0 down to 50 of class 9 (imbalance 10), 100 test images per class.
    let (train, test) = data::fashion_mnist_lt(&data_dir, 500, 10.0, 100)?;
    println!("{} training images, {} test images", train.len(), test.len());
    let config = |epochs| {
        training::TrainingConfig::new(model::ModelConfig::new(10, 512), AdamConfig::new())
            .with_num_epochs(epochs)
            .with_learning_rate(1e-3)
            .with_num_workers(1)
    };

    // g: the guide's training as it is (ERM).
    let g_dir = out.join("g");
    training::train::<Cpu>(g_dir.to_str().unwrap(), config(8), device, train.clone(), test.clone());
    let g = {
        use burn::module::Module;
        model::ModelConfig::new(10, 512).init::<Cpu>(&device).load_file(
            g_dir.join("model"),
            &burn::record::CompactRecorder::new(),
            &device,
        )?
    };

    // f: M2m from epoch 2 of 4, the paper's translation settings except gamma.
    let translation = TranslationParams::default().with_gamma(0.5).check()?;
    let settings = M2mSettings::new(2, 64).with_seed(1).with_translation(translation);
    let epochs =
        training::train_m2m::<Cpu>(out.join("f").to_str().unwrap(), config(4), device, train, test, g, settings);
    for e in &epochs {
        println!(
            "epoch {}: M2m accepted {} of {} translations ({} slots)",
            e.epoch,
            e.stats.total_accepted(),
            e.stats.total_attempts(),
            e.stats.slots
        );
    }
    Ok(())
}
