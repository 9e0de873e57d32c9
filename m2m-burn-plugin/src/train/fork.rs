//! Runs that start as an exact fork of another run. A run keeps the burn-train checkpoint
//! and the best-validation model of chosen epochs (beyond burn's last two); another run
//! whose recipe trains the same first `E` epochs (`crate::recipe::shared_epochs`) starts
//! from a copy of them, with the source's first `E` epoch records, as a resumed run: the
//! resume path, already exact, does the rest.

use std::path::Path;

use anyhow::{bail, Context};
use burn::train::checkpoint::{CheckpointingAction, CheckpointingStrategy};
use burn::train::metric::store::EventStoreClient;

use crate::model::{meta_path, model_file};
use crate::recipe::{resolve_raw, shared_epochs, Recipe};
use crate::run_dir::{ForkRecord, RunDir, RunState};

/// burn's last-two checkpoints, plus the epochs other runs fork from.
pub struct KeepForkPoints {
    pub keep: Vec<usize>,
}

impl CheckpointingStrategy for KeepForkPoints {
    fn checkpointing(&mut self, epoch: usize, _store: &EventStoreClient) -> Vec<CheckpointingAction> {
        let mut actions = vec![CheckpointingAction::Save];
        if let Some(old) = epoch.checked_sub(2).filter(|&e| e > 0 && !self.keep.contains(&e)) {
            actions.push(CheckpointingAction::Delete(old));
        }
        actions
    }
}

/// Copies the best-validation model as it is after `epoch` epochs into the fork point.
pub fn snapshot_best(run: &RunDir, epoch: usize) -> anyhow::Result<()> {
    let (from, to) = (run.best_model_path(), run.fork_best_model_path(epoch));
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (a, b) in [(model_file(&from), model_file(&to)), (meta_path(&from), meta_path(&to))] {
        copy_atomic(&a, &b)?;
    }
    Ok(())
}

fn copy_atomic(from: &Path, to: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    crate::fs::write_atomic(to, &bytes).with_context(|| format!("writing {}", to.display()))
}

/// Why `source` cannot be forked after `epoch` epochs yet (`None`: it can): its recipe,
/// records, kept checkpoint and best-model snapshot of that epoch must all be there, and
/// it must have finished the next epoch (or the run), so burn's checkpoint write is done.
pub fn fork_unavailable(source: &RunDir, epoch: usize) -> Option<String> {
    let state = match source.read_state() {
        Ok(Some(s)) => s,
        Ok(None) => return Some(format!("{} has not finished an epoch yet", source.root.display())),
        Err(e) => return Some(format!("{e:#}")),
    };
    if !(state.finished || state.completed_epochs > epoch) {
        return Some(format!(
            "{} has finished {} epochs, not yet {}",
            source.root.display(),
            state.completed_epochs,
            epoch + 1
        ));
    }
    let best = source.fork_best_model_path(epoch);
    let mut needed: Vec<std::path::PathBuf> =
        ["model", "optim", "scheduler"].iter().map(|k| source.checkpoint_path(k, epoch)).collect();
    needed.extend([model_file(&best), meta_path(&best)]);
    let missing = needed.into_iter().find(|p| !p.is_file());
    missing.map(|p| {
        format!(
            "{} is missing (the run kept no fork point at epoch {epoch}; `m2m train --keep-epochs {epoch}` keeps one)",
            p.display()
        )
    })
}

/// Makes the new run directory `target` an exact fork of `source` after `epoch` epochs,
/// for `recipe` (whose resolved text is `resolved`). Refuses a source whose recipe does
/// not train the same first `epoch` epochs.
pub fn start_fork(
    source: &RunDir,
    epoch: usize,
    target: &RunDir,
    recipe: &Recipe,
    resolved: &str,
) -> anyhow::Result<()> {
    let what = || format!("forking {} from {} at epoch {epoch}", target.root.display(), source.root.display());
    if let Some(why) = fork_unavailable(source, epoch) {
        bail!("{}: {why}", what());
    }
    let source_recipe = resolve_raw(&source.recipe_path())
        .map_err(anyhow::Error::from)
        .and_then(|raw| raw.check().map_err(anyhow::Error::from))
        .with_context(|| format!("{}: reading the source's recipe", what()))?;
    let shared = shared_epochs(&source_recipe, recipe);
    if shared < epoch {
        bail!(
            "{}: the two recipes train differently from epoch {shared} on (data, model, optimiser, schedule, batch size, seed, evaluation, or that epoch's sampler, class weights or M2m), so a fork at epoch {epoch} would not be exact",
            what()
        );
    }
    let records: Vec<_> = source.read_records()?.into_iter().filter(|r| r.epoch < epoch).collect();
    if records.len() != epoch {
        bail!("{}: {} holds {} records of the first {epoch} epochs", what(), source.root.display(), records.len());
    }
    std::fs::create_dir_all(&target.root).with_context(|| format!("creating {}", target.root.display()))?;
    target.write_recipe(resolved)?;
    for kind in ["model", "optim", "scheduler"] {
        copy_atomic(&source.checkpoint_path(kind, epoch), &target.checkpoint_path(kind, epoch)).with_context(what)?;
    }
    let (best, to) = (source.fork_best_model_path(epoch), target.best_model_path());
    copy_atomic(&model_file(&best), &model_file(&to)).with_context(what)?;
    copy_atomic(&meta_path(&best), &meta_path(&to)).with_context(what)?;
    target.write_records(&records)?;
    target.write_fork(&ForkRecord { source: source.root.clone(), epoch })?;
    // Last: from here on the directory is a resumable run after `epoch` epochs.
    target.write_state(&RunState {
        completed_epochs: epoch,
        total_epochs: recipe.epochs,
        finished: false,
        stopped: None,
    })?;
    tracing::info!("{} starts as a fork of {} after epoch {epoch}", target.root.display(), source.root.display());
    Ok(())
}
