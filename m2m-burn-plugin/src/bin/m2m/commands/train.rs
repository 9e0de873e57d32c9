//! `m2m train`: a recipe trained (or resumed from its run directory) and its final metrics.

use m2m_burn_plugin::backend::{run_on, BackendChoice, BackendTask};
use m2m_burn_plugin::recipe::Recipe;
use m2m_burn_plugin::run::{run_recipe_with, Prefixes, ProgressView, RunOutcome};

use super::RecipeArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// Keep the checkpoint after these epoch counts (e.g. `--keep-epochs 160`) so
    /// that other recipes can start from this run there: `start_from: (run: ..., epoch: 160)`.
    #[arg(long, value_delimiter = ',', value_name = "E,...")]
    keep_epochs: Vec<usize>,
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N, wgpu:cpu (default: the recipe's `backend`, else cpu).
    #[arg(long)]
    backend: Option<BackendChoice>,
    /// Plain log lines even on a terminal (no dashboard).
    #[arg(long)]
    pub no_dashboard: bool,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let recipe = self.recipe.load()?;
        if let Some(&bad) = self.keep_epochs.iter().find(|&&e| e == 0 || e >= recipe.epochs) {
            anyhow::bail!("--keep-epochs {bad}: must be in 1..{} (schedule.epochs = {})", recipe.epochs, recipe.epochs);
        }
        let prefixes = Prefixes { keep: self.keep_epochs, ..Default::default() };
        train_and_report(&recipe, self.backend, self.no_dashboard, prefixes)
    }
}

/// Trains `recipe` on `backend` (else the recipe's) and prints its final metrics.
pub fn train_and_report(
    recipe: &Recipe,
    backend: Option<BackendChoice>,
    no_dashboard: bool,
    prefixes: Prefixes,
) -> anyhow::Result<()> {
    let progress = if no_dashboard { ProgressView::Log } else { ProgressView::Auto };
    let outcome = run_on(backend.unwrap_or(recipe.backend), Train { recipe, progress, prefixes })?;
    let m = &outcome.metrics;
    println!("run: {}", outcome.run_dir.display());
    println!(
        "last epoch {}: test bACC {:.4}, GM {:.4}, minor {:.4}",
        m.last.epoch,
        m.last.test.balanced_accuracy,
        m.last.test.geometric_mean,
        m.last.test.minor.unwrap_or(f64::NAN)
    );
    println!(
        "best val epoch {}: test bACC {:.4}, GM {:.4}, minor {:.4}{}",
        m.best_val.epoch,
        m.best_val.test.balanced_accuracy,
        m.best_val.test.geometric_mean,
        m.best_val.test.minor.unwrap_or(f64::NAN),
        if m.selected_on_test { " (selected on the test set)" } else { "" }
    );
    Ok(())
}

struct Train<'a> {
    recipe: &'a Recipe,
    progress: ProgressView,
    prefixes: Prefixes,
}

impl BackendTask for Train<'_> {
    type Output = RunOutcome;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> anyhow::Result<RunOutcome> {
        Ok(run_recipe_with::<B>(self.recipe, device, self.progress, &self.prefixes)?)
    }
}
