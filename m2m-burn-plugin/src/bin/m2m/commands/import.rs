//! `m2m import`: a PyTorch or safetensors ResNet-32 converted into a model saved by m2m.

use std::path::PathBuf;

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::DatasetName;
use m2m_burn_plugin::import::{import_net, ImportError, StateDict};
use m2m_burn_plugin::model::save_classifier;
use m2m_burn_plugin::run::diagnose::imported_spec;

use super::DatasetArg;

#[derive(clap::Args)]
pub struct Args {
    /// The checkpoint file.
    file: PathBuf,
    /// resnet32 (the M2m reference's resnet32 / resnet32_norm / resnet32_gray).
    #[arg(long, default_value = "resnet32")]
    architecture: String,
    /// Number of classes the network was trained on.
    #[arg(long)]
    classes: usize,
    /// The data set whose input normalisation and image shape the network expects
    /// (cifar10, cifar100, fashion-mnist, mnist); default: CIFAR-10 or CIFAR-100 by --classes.
    #[arg(long)]
    dataset: Option<DatasetArg>,
    /// Output folder: `model.mpk` + `model.meta.json` (use as `g: Checkpoint("DIR/model")`) and `import.json`.
    #[arg(long)]
    out: PathBuf,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let classes = self.classes;
        let dataset: DatasetName = match (self.dataset, classes) {
            (Some(d), _) => d.into(),
            (None, 10) => DatasetName::Cifar10,
            (None, 100) => DatasetName::Cifar100,
            (None, k) => {
                anyhow::bail!("--dataset is needed for a network with {k} classes (its normalisation and image shape)")
            }
        };
        anyhow::ensure!(
            dataset.num_classes() == classes,
            "--classes {classes}, but {dataset:?} has {} classes",
            dataset.num_classes()
        );
        anyhow::ensure!(
            self.architecture == "resnet32",
            "--architecture {}: only resnet32 checkpoints can be imported",
            self.architecture
        );
        let file = &self.file;
        let sd = StateDict::read(file)?;
        let spec = imported_spec(&sd, dataset);
        // A conversion, not a computation: the CPU backend whatever the run will use.
        let (net, report) =
            import_net::<Cpu>(&spec, &sd, &Default::default()).map_err(|kind| ImportError::new(file, kind))?;
        let model = self.out.join("model");
        save_classifier(&net, &spec, &model)?;
        let json = serde_json::to_string_pretty(&report)?;
        m2m_burn_plugin::fs::write_atomic(&self.out.join("import.json"), json.as_bytes())?;
        let nested = match &report.nested_under {
            Some(k) => format!("state dict under {k:?}"),
            None => "state dict at the top level".into(),
        };
        println!("{}: {} ({nested})", file.display(), report.format);
        print!("{}", report.table());
        if !report.ignored.is_empty() {
            println!("ignored: {} BatchNorm num_batches_tracked counters", report.ignored.len());
        }
        if !report.outside.is_empty() {
            println!("not read (outside the state dict): {}", report.outside.join(", "));
        }
        println!(
            "saved {} (ResNet-32, {} head, {classes} classes, {dataset:?} normalisation); use it as m2m.g: Checkpoint({:?})",
            model.display(),
            if spec.cosine_head { "cosine" } else { "linear" },
            model.display().to_string()
        );
        Ok(())
    }
}
