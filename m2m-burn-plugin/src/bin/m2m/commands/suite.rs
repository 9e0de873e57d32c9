//! `m2m suite`: every cell of a suite (or of one shard) trained, then its report.

use std::path::PathBuf;

use m2m_burn_plugin::backend::{run_on, BackendChoice, BackendTask};
use m2m_burn_plugin::run::Progress;
use m2m_burn_plugin::suite::{
    collect, load_suite, plan_forks, run_suite_with, write_report, Shard, Suite, SuiteOutcome,
};

#[derive(clap::Args)]
pub struct Args {
    /// The RON suite file.
    suite: PathBuf,
    /// Run only cells j with j mod N == I (0-based), e.g. `--shard $SLURM_ARRAY_TASK_ID/8`.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Write cells and the report here instead of the suite's `output_dir`
    /// (e.g. one folder per shard; `m2m report` merges them).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N, wgpu:cpu (default: the base recipe's `backend`, else cpu).
    #[arg(long)]
    backend: Option<BackendChoice>,
    /// List the cells (and their shard) without training.
    #[arg(long)]
    dry_run: bool,
    /// Train every cell from epoch 0 instead of forking cells from the first epochs
    /// they share with an earlier cell (same results, more time).
    #[arg(long)]
    no_fork: bool,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let suite = load_suite(&self.suite, self.output_dir.as_deref())?;
        let shard = self.shard.unwrap_or(Shard::ALL);
        if self.dry_run {
            print_plan(&suite, shard);
            return Ok(());
        }
        let backend =
            self.backend.or_else(|| suite.cells.first().map(|c| c.recipe.backend)).unwrap_or(BackendChoice::Cpu);
        let outcome = run_on(backend, RunSuite { suite: &suite, shard, fork: !self.no_fork })?;
        println!(
            "suite {}: {} cells trained now ({} of them forked from another cell's first epochs), {} already finished, {} failed",
            suite.name,
            outcome.trained.len(),
            outcome.forked.len(),
            outcome.skipped.len(),
            outcome.failed.len()
        );
        let report = collect(std::slice::from_ref(&suite.output_dir))?;
        let md = write_report(&report, &suite.output_dir)?;
        super::print_table(&report);
        println!("report: {}", md.display());
        if !outcome.failed.is_empty() {
            let list: Vec<String> = outcome.failed.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
            anyhow::bail!(
                "{} cells failed (their finished epochs are kept; run the suite again to retry):\n{}",
                outcome.failed.len(),
                list.join("\n")
            );
        }
        Ok(())
    }
}

/// `--dry-run`: every cell, its shard and the fork it would start as.
fn print_plan(suite: &Suite, shard: Shard) {
    let (plans, _) = plan_forks(&suite.cells);
    for (j, c) in suite.cells.iter().enumerate() {
        let mark = if shard.owns(j) { "*" } else { " " };
        let fork = plans[j].map_or(String::new(), |p| {
            format!("  (fork of {} after epoch {})", suite.cells[p.source].key.run_name(), p.epoch)
        });
        println!("{mark} {j:4} shard {}/{}  {}{fork}", j % shard.count, shard.count, c.key.run_name());
    }
    println!("{} cells; * = in shard {}/{}", suite.cells.len(), shard.index, shard.count);
}

struct RunSuite<'a> {
    suite: &'a Suite,
    shard: Shard,
    fork: bool,
}

impl BackendTask for RunSuite<'_> {
    type Output = SuiteOutcome;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> anyhow::Result<SuiteOutcome> {
        run_suite_with::<B>(self.suite, self.shard, device, Progress::Auto, self.fork)
    }
}
