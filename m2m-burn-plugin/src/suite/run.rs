//! Running a suite: every cell of this shard in order, skipping finished cells and
//! resuming interrupted ones (through `run_recipe_with`), and going on past a failed cell.
//! Cells that share their first epochs with an earlier cell start as its fork
//! ([`super::prefix`]); a source another shard has not trained yet is trained here first.
//! Each cell trains under its run directory's lock, so shards sharing a folder never train
//! one cell twice at the same time.

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;

use super::prefix::{g_cell, plan_forks, ForkPlan};
use super::progress::SuiteProgress;
use super::spec::{suite_to_ron, Shard, Suite};
use crate::run::{run_recipe_with, Prefixes, Progress, RunLock, RunOutcome};
use crate::run_dir::RunDir;
use crate::train::fork_unavailable;

/// What one `m2m suite` invocation did.
#[derive(Debug, Default)]
pub struct SuiteOutcome {
    /// Cells trained (or finished after an interruption) now.
    pub trained: Vec<String>,
    /// Cells that were already finished.
    pub skipped: Vec<String>,
    /// Cells that stopped with an error, and why.
    pub failed: Vec<(String, String)>,
    /// Cells that started as a fork of another cell: (cell, source cell, epoch).
    pub forked: Vec<(String, String, usize)>,
}

/// Writes the suite's manifest (what `m2m report` reads) and its resolved file.
pub fn write_manifest(suite: &Suite) -> anyhow::Result<()> {
    let dir = &suite.output_dir;
    let json = serde_json::to_string_pretty(&suite.manifest())?;
    crate::fs::write_atomic(&dir.join("suite.json"), json.as_bytes())
        .with_context(|| format!("writing {}", dir.join("suite.json").display()))?;
    crate::fs::write_atomic(&dir.join("suite.resolved.ron"), suite_to_ron(&suite.raw).as_bytes())
        .with_context(|| format!("writing {}", dir.join("suite.resolved.ron").display()))?;
    Ok(())
}

/// Runs the cells of `shard`. A cell's results are complete once its `final.json` is
/// written (atomically, last); killing the process at any point loses at most the epoch
/// in progress of one cell, which the next invocation resumes. `progress`: `Auto` shows a
/// bar for the whole run when stderr is a terminal, `Log` plain lines per cell; cells log
/// their epochs as lines either way.
pub fn run_suite<B: AutodiffBackend>(
    suite: &Suite,
    shard: Shard,
    device: B::Device,
    progress: Progress,
) -> anyhow::Result<SuiteOutcome> {
    run_suite_with::<B>(suite, shard, device, progress, true)
}

/// [`run_suite`], with `fork_prefixes: false` training every cell from epoch 0 (the same
/// results, more time: for timing the saving or checking it).
pub fn run_suite_with<B: AutodiffBackend>(
    suite: &Suite,
    shard: Shard,
    device: B::Device,
    progress: Progress,
    fork_prefixes: bool,
) -> anyhow::Result<SuiteOutcome> {
    write_manifest(suite)?;
    let (plans, keep) = if fork_prefixes {
        plan_forks(&suite.cells)
    } else {
        (vec![None; suite.cells.len()], vec![Vec::new(); suite.cells.len()])
    };
    let mine: Vec<usize> = (0..suite.cells.len()).filter(|&j| shard.owns(j)).collect();
    let forks = plans.iter().filter(|p| p.is_some()).count();
    tracing::info!(
        "suite {}: {} of {} cells in shard {}/{}; {forks} cells fork from another cell's first epochs",
        suite.name,
        mine.len(),
        suite.cells.len(),
        shard.index,
        shard.count
    );
    // Cells log their epochs as lines (a dashboard per cell would fight the suite's bar).
    let shown = SuiteProgress::start(suite, &mine, &plans, progress == Progress::Auto);
    let runner = Runner::<B> { suite, plans: &plans, keep: &keep, device, progress: &shown };
    let mut outcome = SuiteOutcome::default();
    for (i, &j) in mine.iter().enumerate() {
        let cell = &suite.cells[j];
        let name = cell.key.run_name();
        shown.cell(i, cell, plans[j].map(|p| (suite.cells[p.source].key.run_name(), p.epoch)));
        let started = std::time::Instant::now();
        let result = runner.run_cell(j);
        shown.cell_done(cell, matches!(result, Ok((_, Some(_)))), started.elapsed().as_secs_f64());
        match result {
            Ok((o, forked)) => {
                if let Some(p) = forked {
                    outcome.forked.push((name.clone(), suite.cells[p.source].key.run_name(), p.epoch));
                }
                if o.trained_now {
                    outcome.trained.push(name)
                } else {
                    outcome.skipped.push(name)
                }
            }
            Err(e) => {
                tracing::error!("cell {name} failed: {e:#}");
                outcome.failed.push((name, format!("{e:#}")));
            }
        }
    }
    Ok(outcome)
}

struct Runner<'a, B: AutodiffBackend> {
    suite: &'a Suite,
    plans: &'a [Option<ForkPlan>],
    keep: &'a [Vec<usize>],
    device: B::Device,
    progress: &'a SuiteProgress,
}

impl<B: AutodiffBackend> Runner<'_, B> {
    /// Trains (or finishes, or skips) cell `j` under its lock, keeping its fork points.
    fn train(&self, j: usize, fork_from: Option<(std::path::PathBuf, usize)>) -> anyhow::Result<RunOutcome> {
        let cell = &self.suite.cells[j];
        let _lock = RunLock::acquire(&cell.recipe.run_dir(), &cell.key.run_name())?;
        let from = match RunDir::new(cell.recipe.run_dir()).read_state()? {
            Some(state) => state.completed_epochs,
            None => fork_from.as_ref().map_or(0, |(_, epoch)| *epoch),
        };
        self.progress.training(cell, from);
        let prefixes = Prefixes { keep: self.keep[j].clone(), fork_from };
        let outcome = run_recipe_with::<B>(&cell.recipe, self.device.clone(), Progress::Log, &prefixes);
        self.progress.trained();
        outcome
    }

    /// Cell `j`, as a fork when its plan says so and the source's fork point is (or, after
    /// training the source here, becomes) available; otherwise from scratch, which
    /// computes the same. The cells it needs first (its g, its fork source) are trained
    /// the same way, through their own plans. Returns the fork it started as, if it
    /// started now as one.
    fn run_cell(&self, j: usize) -> anyhow::Result<(RunOutcome, Option<ForkPlan>)> {
        let cell = &self.suite.cells[j];
        // g from another cell (`g: Method(...)`): that cell finishes first.
        if let Some(g) = g_cell(&self.suite.cells, j) {
            let g_name = self.suite.cells[g].key.run_name();
            if !RunDir::new(self.suite.cells[g].recipe.run_dir()).is_finished() {
                tracing::info!("{}: training its g, {g_name}, first", cell.key.run_name());
                self.run_cell(g).with_context(|| format!("training {g_name}, the g of {}", cell.key.run_name()))?;
            }
        }
        let fresh = RunDir::new(cell.recipe.run_dir()).read_state()?.is_none();
        let Some(p) = self.plans[j].filter(|_| fresh) else {
            return Ok((self.train(j, None)?, None));
        };
        let source = &self.suite.cells[p.source];
        let source_dir = RunDir::new(source.recipe.run_dir());
        if fork_unavailable(&source_dir, p.epoch).is_some() {
            // Another shard's cell, or one that failed earlier: train (or wait for) it here.
            tracing::info!("{}: training its prefix source {} first", cell.key.run_name(), source.key.run_name());
            if let Err(e) = self.run_cell(p.source) {
                tracing::warn!(
                    "{}: the prefix source {} failed ({e:#}); training from epoch 0",
                    cell.key.run_name(),
                    source.key.run_name()
                );
            }
        }
        match fork_unavailable(&source_dir, p.epoch) {
            None => Ok((self.train(j, Some((source_dir.root, p.epoch)))?, Some(p))),
            Some(why) => {
                // E.g. a source finished by an older m2m, which kept no fork points.
                tracing::info!(
                    "{}: cannot fork from {} ({why}); training from epoch 0",
                    cell.key.run_name(),
                    source.key.run_name()
                );
                Ok((self.train(j, None)?, None))
            }
        }
    }
}
