//! Running a suite: every cell of this shard in order, skipping finished cells and
//! resuming interrupted ones (through `run_recipe_with`), and going on past a failed cell.
//! Cells that share their first epochs with an earlier cell start as its fork
//! ([`super::prefix`]); a source another shard has not trained yet is trained here first.
//! Each cell trains under its run directory's lock (a lease, `run::RunLock`), so shards
//! sharing a folder never train one cell twice at the same time; a shard that finds a
//! cell held by a live process goes on with its other cells and comes back to it. A
//! signal stops the shard after the cell in progress reaches a safe point.

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;

use super::prefix::{g_cell, plan_forks, ForkPlan};
use super::progress::SuiteProgress;
use super::spec::{suite_to_ron, Cell, Shard, Suite};
use crate::error::{busy_by, stopped_by};
use crate::run::{run_recipe_with, Prefixes, ProgressView, RunLock, RunOutcome};
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
    /// The cell a signal stopped mid-way (it resumes from its last complete epoch).
    pub interrupted: Vec<String>,
    /// Cells of this shard not run because the run stopped first (a signal).
    pub not_run: Vec<String>,
    /// Set when a signal stopped the run: the cells left are in `not_run`.
    pub stopped: Option<crate::stop::Stopped>,
}

/// Whether a shard goes on after a cell.
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    /// A signal stopped the cell: the shard stops too.
    Stop,
}

impl SuiteOutcome {
    /// Files cell `name`'s result under its heading.
    fn record(&mut self, suite: &Suite, name: String, result: anyhow::Result<(RunOutcome, Option<ForkPlan>)>) -> Next {
        match result {
            Ok((o, forked)) => {
                if let Some(p) = forked {
                    self.forked.push((name.clone(), suite.cells[p.source].key.run_name(), p.epoch));
                }
                if o.trained_now {
                    self.trained.push(name)
                } else {
                    self.skipped.push(name)
                }
            }
            Err(e) => match stopped_by(&e) {
                Some(why @ crate::stop::Stopped::Signal(_)) => {
                    tracing::warn!("{e:#}");
                    self.stopped = Some(why.clone());
                    self.interrupted.push(name);
                    return Next::Stop;
                }
                _ => {
                    tracing::error!("cell {name} failed: {e:#}");
                    self.failed.push((name, format!("{e:#}")));
                }
            },
        }
        Next::Continue
    }
}

/// Writes the suite's manifest (what `m2m report` reads) and its resolved file.
pub fn write_manifest(suite: &Suite) -> Result<(), crate::Error> {
    manifest(suite).map_err(crate::Error::new)
}

fn manifest(suite: &Suite) -> anyhow::Result<()> {
    let dir = &suite.output_dir;
    crate::fs::write_json(&dir.join("suite.json"), &suite.manifest())?;
    crate::fs::write_atomic(&dir.join("suite.resolved.ron"), suite_to_ron(&suite.raw).as_bytes())
        .with_context(|| format!("writing {}", dir.join("suite.resolved.ron").display()))?;
    write_hparams_experiment(suite);
    Ok(())
}

/// The suite's hparams experiment in `cells/` (what `tensorboard --logdir .../cells`
/// opens): the union of the cells' recipe fields. A failure is a warning: it is a view.
fn write_hparams_experiment(suite: &Suite) {
    let logged: Vec<&Cell> = suite.cells.iter().filter(|c| c.recipe.tensorboard).collect();
    let Some(first) = logged.first() else { return };
    let mut names: Vec<String> = logged
        .iter()
        .filter_map(|c| serde_json::to_value(&c.recipe.raw).ok())
        .flat_map(|v| crate::tensorboard::recipe_hparams(&v).into_iter().map(|(name, _)| name))
        .collect();
    names.sort();
    names.dedup();
    let dir = first.recipe.output_dir.clone();
    if let Err(e) = crate::tensorboard::write_experiment(&dir, &names) {
        tracing::warn!("TensorBoard: writing the suite's hparams experiment into {}: {e}", dir.display());
    }
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
    progress: ProgressView,
) -> Result<SuiteOutcome, crate::Error> {
    run_suite_with::<B>(suite, shard, device, progress, true)
}

/// [`run_suite`], with `fork_prefixes: false` training every cell from epoch 0 (the same
/// results, more time: for timing the saving or checking it).
pub fn run_suite_with<B: AutodiffBackend>(
    suite: &Suite,
    shard: Shard,
    device: B::Device,
    progress: ProgressView,
    fork_prefixes: bool,
) -> Result<SuiteOutcome, crate::Error> {
    execute::<B>(suite, shard, device, progress, fork_prefixes).map_err(crate::Error::new)
}

/// [`run_suite_with`]'s steps, with the chain of contexts the error will carry.
fn execute<B: AutodiffBackend>(
    suite: &Suite,
    shard: Shard,
    device: B::Device,
    progress: ProgressView,
    fork_prefixes: bool,
) -> anyhow::Result<SuiteOutcome> {
    manifest(suite)?;
    let planned = plan_forks(&suite.cells);
    // Dealt by the fork families the suite has, forked or not, so every shard agrees.
    // A search runs as one unit, from its first trial.
    let mine: Vec<usize> = super::shard::deal(&suite.cells, &planned.0, shard.count)
        .cells_of(shard)
        .into_iter()
        .filter(|&j| suite.cells[j].trial.as_ref().is_none_or(|t| t.number == 0))
        .collect();
    let (plans, keep) =
        if fork_prefixes { planned } else { (vec![None; suite.cells.len()], vec![Vec::new(); suite.cells.len()]) };
    let forks = plans.iter().filter(|p| p.is_some()).count();
    // A search counts as one cell here, as in the report.
    tracing::info!(
        "suite {}: {} of {} cells in shard {}/{}; {forks} cells fork from another cell's first epochs",
        suite.name,
        mine.len(),
        suite.report_keys().len(),
        shard.index,
        shard.count
    );
    // Cells log their epochs as lines (a dashboard per cell would fight the suite's bar).
    let shown = SuiteProgress::start(suite, &mine, &plans, progress == ProgressView::Auto);
    let runner = Runner::<B> { suite, plans: &plans, keep: &keep, device, progress: &shown };
    let mut outcome = SuiteOutcome::default();
    // Cells whose lock a live process holds go to the back of the queue; when every cell
    // left is held elsewhere, the shard waits a little and tries them again.
    let mut queue: std::collections::VecDeque<(usize, usize)> = mine.iter().copied().enumerate().collect();
    let (mut announced, mut told_busy) = (vec![false; mine.len()], vec![false; mine.len()]);
    let mut held_in_a_row = 0;
    while let Some((i, j)) = queue.pop_front() {
        let cell = &suite.cells[j];
        let name = unit_name(cell);
        if let Some(why) = crate::stop::signal_received() {
            outcome.stopped = Some(why);
            outcome.not_run.push(name);
            outcome.not_run.extend(queue.drain(..).map(|(_, j)| unit_name(&suite.cells[j])));
            break;
        }
        if !std::mem::replace(&mut announced[i], true) {
            shown.cell(i, &name, plans[j].map(|p| (suite.cells[p.source].key.run_name(), p.epoch)));
        }
        let started = std::time::Instant::now();
        let result = runner.run_unit(j);
        if let Err(e) = &result {
            if busy_by(e).is_some() {
                if !std::mem::replace(&mut told_busy[i], true) {
                    tracing::info!("{e:#}; this shard goes on with its other cells and comes back to it");
                }
                queue.push_back((i, j));
                held_in_a_row += 1;
                if held_in_a_row >= queue.len() {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    held_in_a_row = 0;
                }
                continue;
            }
        }
        held_in_a_row = 0;
        let signalled =
            result.as_ref().err().and_then(stopped_by).is_some_and(|s| matches!(s, crate::stop::Stopped::Signal(_)));
        if !signalled {
            shown.cell_done(&name, matches!(result, Ok((_, Some(_)))), started.elapsed().as_secs_f64());
        }
        if outcome.record(suite, name, result) == Next::Stop {
            outcome.not_run.extend(queue.drain(..).map(|(_, j)| unit_name(&suite.cells[j])));
            break;
        }
    }
    Ok(outcome)
}

/// The name a queue entry goes by: the cell's, or its search's (for its first trial).
fn unit_name(cell: &Cell) -> String {
    cell.trial.as_ref().map_or_else(|| cell.key.run_name(), |t| t.group.run_name())
}

pub(super) struct Runner<'a, B: AutodiffBackend> {
    pub(super) suite: &'a Suite,
    pub(super) plans: &'a [Option<ForkPlan>],
    pub(super) keep: &'a [Vec<usize>],
    pub(super) device: B::Device,
    pub(super) progress: &'a SuiteProgress,
}

impl<B: AutodiffBackend> Runner<'_, B> {
    /// Trains (or finishes, or skips) cell `j` under its lock, keeping its fork points,
    /// and pausing after `pause` epochs when asked (a search's rung).
    pub(super) fn train(
        &self,
        j: usize,
        fork_from: Option<(std::path::PathBuf, usize)>,
        pause: Option<usize>,
    ) -> anyhow::Result<RunOutcome> {
        let cell = &self.suite.cells[j];
        let _lock = RunLock::try_acquire(&cell.recipe.run_dir(), &cell.key.run_name())?
            .map_err(|busy| anyhow::Error::new(busy).context(format!("{} is busy", cell.key.run_name())))?;
        let from = match RunDir::new(cell.recipe.run_dir()).read_state()? {
            Some(state) => state.completed_epochs,
            None => fork_from.as_ref().map_or(0, |(_, epoch)| *epoch),
        };
        self.progress.training(cell, from);
        let prefixes = Prefixes { keep: self.keep[j].clone(), fork_from, pause_after: pause };
        let outcome = run_recipe_with::<B>(&cell.recipe, self.device.clone(), ProgressView::Log, &prefixes);
        self.progress.trained();
        Ok(outcome?)
    }

    /// g from another cell (`g: Method(...)`): that cell finishes first.
    pub(super) fn ensure_g(&self, j: usize) -> anyhow::Result<()> {
        let Some(g) = g_cell(&self.suite.cells, j) else { return Ok(()) };
        let name = self.suite.cells[j].key.run_name();
        let g_name = self.suite.cells[g].key.run_name();
        if !RunDir::new(self.suite.cells[g].recipe.run_dir()).is_finished() {
            tracing::info!("{name}: training its g, {g_name}, first");
            self.run_cell(g).with_context(|| format!("training {g_name}, the g of {name}"))?;
        }
        Ok(())
    }

    /// Where a new run of cell `j` starts: its plan's fork point when that is (or, after
    /// training the source here, becomes) available, else `None` (from scratch, which
    /// computes the same). A source that is a trial is never trained here: it trained
    /// past the fork point in its own first rung, or the cell starts from scratch.
    pub(super) fn fork_point(&self, j: usize) -> anyhow::Result<Option<(ForkPlan, std::path::PathBuf)>> {
        let Some(p) = self.plans[j] else { return Ok(None) };
        let (cell, source) = (&self.suite.cells[j], &self.suite.cells[p.source]);
        let source_dir = RunDir::new(source.recipe.run_dir());
        if fork_unavailable(&source_dir, p.epoch).is_some() && source.trial.is_none() {
            // Another shard's cell, or one that failed earlier: train (or wait for) it here.
            tracing::info!("{}: training its prefix source {} first", cell.key.run_name(), source.key.run_name());
            if let Err(e) = self.run_cell(p.source) {
                if busy_by(&e).is_some() || stopped_by(&e).is_some() {
                    return Err(e.context(format!("{} forks from {}", cell.key.run_name(), source.key.run_name())));
                }
                tracing::warn!(
                    "{}: the prefix source {} failed ({e:#}); training from epoch 0",
                    cell.key.run_name(),
                    source.key.run_name()
                );
            }
        }
        match fork_unavailable(&source_dir, p.epoch) {
            None => Ok(Some((p, source_dir.root))),
            Some(why) => {
                // E.g. a source finished by an older m2m, which kept no fork points.
                tracing::info!(
                    "{}: cannot fork from {} ({why}); training from epoch 0",
                    cell.key.run_name(),
                    source.key.run_name()
                );
                Ok(None)
            }
        }
    }

    /// Cell `j`, as a fork when its plan says so and the source's fork point is
    /// available (see [`Self::fork_point`]); the cells it needs first (its g, its fork
    /// source) are trained the same way, through their own plans. Returns the fork it
    /// started as, if it started now as one.
    fn run_cell(&self, j: usize) -> anyhow::Result<(RunOutcome, Option<ForkPlan>)> {
        self.ensure_g(j)?;
        if RunDir::new(self.suite.cells[j].recipe.run_dir()).read_state()?.is_some() {
            return Ok((self.train(j, None, None)?, None));
        }
        match self.fork_point(j)? {
            Some((p, source)) => Ok((self.train(j, Some((source, p.epoch)), None)?, Some(p))),
            None => Ok((self.train(j, None, None)?, None)),
        }
    }

    /// Cell `j` of the queue: a cell, or the whole search whose first trial it is.
    fn run_unit(&self, j: usize) -> anyhow::Result<(RunOutcome, Option<ForkPlan>)> {
        match &self.suite.cells[j].trial {
            Some(_) => self.run_search(j),
            None => self.run_cell(j),
        }
    }
}
