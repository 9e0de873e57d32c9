//! `m2m export-images`: a built-in data set written as PNG files that `dataset.images` reads.

use std::path::PathBuf;

use m2m_burn_plugin::data::{images, DatasetName};

use super::DatasetArg;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    dataset: DatasetArg,
    /// The folder with the data set's files (default: where recipes look).
    #[arg(long)]
    path: Option<PathBuf>,
    /// The folder to write (`train/`, `test/`; or `images/` and `train.txt`, `test.txt`).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "class-folders")]
    layout: Layout,
    /// Only the first N images of each class of each split.
    #[arg(long)]
    per_class: Option<usize>,
}

/// An image-file layout `dataset.images` reads.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Layout {
    ClassFolders,
    SplitFiles,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let dataset: DatasetName = self.dataset.into();
        let dir = dataset.locate(self.path.as_deref())?;
        let (train, test) = dataset.read(&dir)?;
        let (train, test) = match self.per_class {
            Some(n) => (train.first_per_class(n), test.first_per_class(n)),
            None => (train, test),
        };
        let started = std::time::Instant::now();
        let splits = [("train", &train), ("test", &test)];
        let written = match self.layout {
            Layout::ClassFolders => images::export_class_folders(&self.out, &splits, &dataset.class_names())?,
            Layout::SplitFiles => images::export_split_files(&self.out, &splits)?,
        };
        println!(
            "wrote {written} PNG files of {dataset:?} from {} to {} in {:.1} s",
            dir.display(),
            self.out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}
