//! burn's guide example (`examples/guide` of burn v0.21.0) with M2m added: `data.rs`,
//! `model.rs` and `training.rs` are burn's files with the diff of docs/m2m.md applied
//! (their formatting is burn's), except that `MnistItem` and `MnistDataset` come from
//! `vision.rs`, which serves long-tailed Fashion-MNIST from local files instead of
//! downloading MNIST. `erm.rs` trains g, the guide's model without M2m.
//!
//! `cargo run --release --example guide -- [FASHION_MNIST_DIR] [OUT_DIR]`
//! (defaults: $M2M_DATA or Debian's /usr/share/datasets/fashion-mnist, a temporary folder).

#[rustfmt::skip]
mod data;
mod erm;
#[rustfmt::skip]
mod model;
#[rustfmt::skip]
mod training;
mod vision;

use burn::optim::AdamConfig;
use m2m_burn_plugin::backend::Cpu;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    // The folder given, else where m2m finds Fashion-MNIST ($M2M_DATA, Debian's package).
    let data_dir = m2m_burn_plugin::data::DatasetName::FashionMnist
        .locate(args.next().map(std::path::PathBuf::from).as_deref())?;
    let out = args.next().map(std::path::PathBuf::from).unwrap_or_else(|| std::env::temp_dir().join("m2m-guide"));
    let out = out.to_str().ok_or_else(|| anyhow::anyhow!("{}: not UTF-8", out.display()))?;
    // 500 images of class 0 down to 50 of class 9 (imbalance 10), 100 test images per class.
    let (train, test) = vision::use_fashion_mnist_lt(&data_dir, 500, 10.0, 100)?;
    println!("{train} training images, {test} test images");
    let config = |epochs| {
        training::TrainingConfig::new(model::ModelConfig::new(10, 512), AdamConfig::new())
            .with_num_epochs(epochs)
            .with_learning_rate(1e-3)
            .with_num_workers(1)
    };
    let device = Default::default();
    // g: the guide's model without M2m; f: the guide with M2m, from epoch 4 of 5 (4/5 of them).
    erm::train_g::<Cpu>(&format!("{out}/guide-erm"), &config(8), device);
    training::train::<Cpu>(&format!("{out}/guide"), config(5), device);
    let log = std::fs::read_to_string(format!("{out}/guide/experiment.log")).unwrap_or_default();
    log.lines().filter(|l| l.contains("M2m epoch")).for_each(|l| println!("{l}"));
    println!("TensorBoard: tensorboard --logdir {out}/guide");
    Ok(())
}
