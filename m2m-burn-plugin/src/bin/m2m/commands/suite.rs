//! `m2m suite`: every cell of a suite (or of one shard) trained, then its report; or, with
//! `--slurm`, the suite submitted as a Slurm job array with a merge job.

use std::path::PathBuf;

use m2m_burn_plugin::backend::{run_on, BackendChoice, BackendTask};
use m2m_burn_plugin::run::ProgressView;
use m2m_burn_plugin::suite::search::search_groups;
use m2m_burn_plugin::suite::{
    collect, deal, estimate, load_suite, plan_forks, run_suite_with, trained_epochs, write_report, ForkPlan, Shard,
    Suite, SuiteOutcome,
};
use m2m_burn_plugin::terminal::duration;

use super::slurm;

#[derive(clap::Args)]
pub struct Args {
    /// The RON suite file.
    suite: PathBuf,
    /// Run shard I of N (0-based): whole fork families dealt by cost, as `--dry-run`
    /// prints. `auto`: from a Slurm array (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT)
    /// or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of M2M_SHARD_COUNT).
    #[arg(long, value_name = "I/N|auto")]
    shard: Option<ShardArg>,
    /// Write cells and the report here instead of the suite's `output_dir`
    /// (e.g. one folder per shard; `m2m report` merges them).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N, wgpu:cpu (default: the base recipe's `backend`, else cpu).
    #[arg(long)]
    backend: Option<BackendChoice>,
    /// List the cells, their shard and fork without training (with --slurm: print the
    /// job scripts and the sbatch commands without submitting).
    #[arg(long)]
    dry_run: bool,
    /// Train every cell from epoch 0 instead of forking cells from the first epochs
    /// they share with an earlier cell (same results, more time).
    #[arg(long)]
    no_fork: bool,
    #[command(flatten)]
    slurm: slurm::SlurmArgs,
}

/// `--shard`: a fixed shard or one read from the job array's environment.
#[derive(Clone, Copy, Debug)]
enum ShardArg {
    Fixed(Shard),
    Auto,
}

impl std::str::FromStr for ShardArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim() == "auto" {
            return Ok(ShardArg::Auto);
        }
        s.parse().map(ShardArg::Fixed)
    }
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let suite = load_suite(&self.suite, self.output_dir.as_deref())?;
        if self.slurm.slurm {
            anyhow::ensure!(self.shard.is_none(), "--slurm deals the shards itself: drop --shard");
            return slurm::submit(&suite, &self.suite, &self.slurm, self.backend, self.no_fork, self.dry_run);
        }
        let shard = match self.shard {
            None => Shard::ALL,
            Some(ShardArg::Fixed(s)) => s,
            Some(ShardArg::Auto) => Shard::from_env().map_err(anyhow::Error::msg)?,
        };
        if self.dry_run {
            print_plan(&suite, shard);
            return Ok(());
        }
        let backend =
            self.backend.or_else(|| suite.cells.first().map(|c| c.recipe.backend)).unwrap_or(BackendChoice::Cpu);
        let outcome = run_on(backend, RunSuite { suite: &suite, shard, fork: !self.no_fork })?;
        let done = outcome.trained.len() + outcome.skipped.len();
        let cells = done + outcome.failed.len() + outcome.interrupted.len() + outcome.not_run.len();
        let whose = if shard.count > 1 {
            format!("shard {}/{} of suite {}", shard.index, shard.count, suite.name)
        } else {
            format!("suite {}", suite.name)
        };
        println!(
            "{whose}: {} cells trained now ({} of them forked from another cell's first epochs), {} already \
             finished, {} failed, {} stopped, {} not run: {done} of its {cells} cells finished",
            outcome.trained.len(),
            outcome.forked.len(),
            outcome.skipped.len(),
            outcome.failed.len(),
            outcome.interrupted.len(),
            outcome.not_run.len()
        );
        let report = collect(std::slice::from_ref(&suite.output_dir))?;
        let md = write_report(&report, &suite.output_dir)?;
        if shard.count > 1 {
            // The other shards' cells may be elsewhere or still running: no table of
            // "missing" cells here; `m2m report` merges the shards' folders.
            println!(
                "report of the cells finished in {} so far: {} (merge every shard's folder with `m2m report`)",
                suite.output_dir.display(),
                md.display()
            );
        } else {
            super::print_table(&report);
            println!("report: {}", md.display());
        }
        if !outcome.failed.is_empty() {
            let list: Vec<String> = outcome.failed.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
            anyhow::bail!(
                "{} cells failed (their finished epochs are kept; run the suite again to retry):\n{}",
                outcome.failed.len(),
                list.join("\n")
            );
        }
        if let Some(why) = outcome.stopped {
            return Err(anyhow::Error::new(why).context(format!(
                "{whose}: {} stopped, {} cells not run: {}",
                outcome.interrupted.join(", "),
                outcome.not_run.len(),
                outcome.not_run.join(", ")
            )));
        }
        Ok(())
    }
}

/// `--dry-run`: every cell, its shard and the fork it would start as; each shard's cost.
fn print_plan(suite: &Suite, shard: Shard) {
    let (plans, _) = plan_forks(&suite.cells);
    let dealt = deal(&suite.cells, &plans, shard.count);
    for (j, c) in suite.cells.iter().enumerate() {
        let mark = if dealt.shard_of[j] == shard.index { "*" } else { " " };
        let fork = plans[j].map_or(String::new(), |p| {
            format!("  (fork of {} after epoch {})", suite.cells[p.source].key.run_name(), p.epoch)
        });
        println!(
            "{mark} {j:4} shard {}/{}  cost {:6.1}  {}{fork}",
            dealt.shard_of[j],
            shard.count,
            dealt.cell_cost[j],
            c.key.run_name()
        );
    }
    if shard.count > 1 {
        let costs: Vec<String> = dealt.cost.iter().enumerate().map(|(s, c)| format!("{s}: {c:.1}")).collect();
        println!(
            "estimated cost per shard, in plain epochs (an M2m epoch counts {}): {}",
            m2m_burn_plugin::suite::M2M_EPOCH_COST,
            costs.join(", ")
        );
    }
    println!("{} cells; * = in shard {}/{}", suite.cells.len(), shard.index, shard.count);
    print_searches(suite);
    print_time(suite, &plans, &dealt.cells_of(shard));
}

/// `--dry-run`: each search's trials, rungs and epochs against the full grid.
fn print_searches(suite: &Suite) {
    for g in search_groups(&suite.cells) {
        let (spent, full) = g.halving.epochs(g.trials.len(), g.shared, g.total);
        println!(
            "search {}: {} trials sharing {} epochs; rungs end at epochs {:?}; {spent} trial epochs after the \
             shared ones with successive halving, against {full} for every trial to the end",
            g.key.run_name(),
            g.trials.len(),
            g.shared,
            g.rung_ends()
        );
        if let Some(p) = g.prune.map(|p| p.params()) {
            println!(
                "    first, each trial's M2m is probed on {} training batches; trials accepting under {}% of their \
                 translations are dropped (the counts above assume none is)",
                p.batches,
                100.0 * p.min_acceptance
            );
        }
        for &t in &g.trials {
            let cell = &suite.cells[t];
            let setting = cell.trial.as_ref().map(|x| x.setting_text()).unwrap_or_default();
            println!("    {}  {setting}", cell.key.run_name());
        }
    }
}

/// The time of the marked cells per backend, from measured epochs (suite::estimate).
fn print_time(suite: &Suite, plans: &[Option<ForkPlan>], cells: &[usize]) {
    let (plain, m2m) = cells.iter().fold((0, 0), |(p, m), &j| {
        let (a, b) = trained_epochs(&suite.cells[j], plans[j]);
        (p + a, m + b)
    });
    println!("{plain} ordinary and {m2m} M2m epochs to train; time, scaled by training images from measured epochs:");
    for e in estimate(&suite.cells, plans, cells) {
        match e.seconds {
            Ok(s) => println!("  {:<5} about {}, from {}", e.backend, duration(s), e.sources.join("; ")),
            Err(why) => println!("  {:<5} {why}", e.backend),
        }
    }
}

struct RunSuite<'a> {
    suite: &'a Suite,
    shard: Shard,
    fork: bool,
}

impl BackendTask for RunSuite<'_> {
    type Output = SuiteOutcome;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> anyhow::Result<SuiteOutcome> {
        Ok(run_suite_with::<B>(self.suite, self.shard, device, ProgressView::Auto, self.fork)?)
    }
}
