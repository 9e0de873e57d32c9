//! The commands of `m2m`, one module each (its clap arguments and its handler), and the
//! arguments and output several of them share.

pub mod check;
pub mod data;
pub mod export_images;
pub mod fetch;
pub mod import;
pub mod probe;
pub mod report;
pub mod resume;
pub mod slurm;
pub mod suite;
pub mod train;
pub mod translate;

use std::path::PathBuf;

use m2m_burn_plugin::data::DatasetName;
use m2m_burn_plugin::recipe::{load_recipe, Recipe};

/// A recipe file with `--set` overrides.
#[derive(clap::Args)]
pub struct RecipeArgs {
    /// The RON recipe file.
    pub recipe: PathBuf,
    /// Override a field, e.g. `--set dataset.ratio=50` or `--set schedule.epochs=3` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    pub overrides: Vec<String>,
}

impl RecipeArgs {
    /// The recipe, resolved and checked.
    pub fn load(&self) -> anyhow::Result<Recipe> {
        Ok(load_recipe(&self.recipe, &self.overrides)?)
    }
}

/// A data set named on the command line, by the name `m2m data fetch` and the library's
/// hints use (`DatasetName::fetch_name`).
#[derive(Clone, Copy, Debug)]
pub enum DatasetArg {
    Cifar10,
    Cifar100,
    FashionMnist,
    Mnist,
}

impl clap::ValueEnum for DatasetArg {
    fn value_variants<'a>() -> &'a [Self] {
        &[DatasetArg::Cifar10, DatasetArg::Cifar100, DatasetArg::FashionMnist, DatasetArg::Mnist]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(DatasetName::from(*self).fetch_name()))
    }
}

impl From<DatasetArg> for DatasetName {
    fn from(d: DatasetArg) -> DatasetName {
        match d {
            DatasetArg::Cifar10 => DatasetName::Cifar10,
            DatasetArg::Cifar100 => DatasetName::Cifar100,
            DatasetArg::FashionMnist => DatasetName::FashionMnist,
            DatasetArg::Mnist => DatasetName::Mnist,
        }
    }
}

/// The balanced-accuracy table of a suite report on stdout.
pub fn print_table(report: &m2m_burn_plugin::suite::Report) {
    print!("{}", m2m_burn_plugin::suite::balanced_accuracy_table(report));
    if !report.missing.is_empty() {
        println!("{} of {} cells missing", report.missing.len(), report.total_cells);
    }
}
