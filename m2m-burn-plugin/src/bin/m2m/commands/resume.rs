//! `m2m resume`: a run continued from its directory, with the recipe it recorded.

use std::path::PathBuf;

use m2m_burn_plugin::backend::BackendChoice;
use m2m_burn_plugin::recipe::load_recipe;
use m2m_burn_plugin::run::Prefixes;
use m2m_burn_plugin::run_dir::RunDir;

#[derive(clap::Args)]
pub struct Args {
    run_dir: PathBuf,
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N, wgpu:cpu (default: the recipe's `backend`, else cpu).
    #[arg(long)]
    backend: Option<BackendChoice>,
    /// Plain log lines even on a terminal (no dashboard).
    #[arg(long)]
    pub no_dashboard: bool,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let path = RunDir::new(self.run_dir.clone()).recipe_path();
        let recipe = load_recipe(&path, &[])?;
        let expected = recipe.run_dir();
        if std::fs::canonicalize(&expected).ok() != std::fs::canonicalize(&self.run_dir).ok() {
            anyhow::bail!(
                "{} belongs to the run directory {} (its output_dir/name); resume it from there",
                path.display(),
                expected.display()
            );
        }
        super::train::train_and_report(&recipe, self.backend, self.no_dashboard, Prefixes::default())
    }
}
