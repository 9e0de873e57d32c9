//! Running a search ([`super::search`]): its trials rung by rung. Every trial still in
//! the search trains to the rung's end (pausing there, resumably), the trials are scored
//! on validation balanced accuracy, the best go on. What happened is written after every
//! rung to `OUTPUT_DIR/search/RUN_NAME.json` ([`SearchRecord`]), which the report reads.
//!
//! Nothing a search decides depends on when it ran: scores are read back from the
//! trials' run directories, so a search stopped anywhere (a signal, a lost lease, a busy
//! trial) and run again retraces the same rungs, skips the epochs already trained and
//! chooses what an uninterrupted run chooses.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::execute::Runner;
use super::prefix::ForkPlan;
use super::search::{choose, search_groups, Prune, PruneParams, SearchGroup};
use super::spec::CellKey;
use crate::error::{busy_by, stopped_by};
use crate::run::diagnose::probe_recipe;
use crate::run::RunOutcome;
use crate::run_dir::RunDir;
use crate::stop::Stopped;

/// One trial of a search, as the record lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialEntry {
    /// The trial's run name (`METHOD-tK.…`).
    pub run: String,
    /// Its setting, `field=value` joined by `, `.
    pub setting: String,
}

/// One rung of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RungEntry {
    /// The epoch count the rung ends at.
    pub end: usize,
    /// The trials that trained to `end` (indices into [`SearchRecord::trials`]).
    pub trained: Vec<usize>,
    /// Each trained trial's score: its best validation balanced accuracy (fraction) over
    /// its epochs from the point the trials part ways to `end`; `None` for a trial that
    /// did not reach `end` (it failed).
    pub scores: Vec<Option<f64>>,
    /// The trials that go on (after the last rung: the chosen one).
    pub promoted: Vec<usize>,
}

/// What a search did: `OUTPUT_DIR/search/RUN_NAME.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    /// The search's place in the report (the searched method's name).
    pub key: CellKey,
    /// The trials, in trial order.
    pub trials: Vec<TrialEntry>,
    /// Epochs every trial trains identically (the rungs count from there).
    pub shared: usize,
    /// The epoch counts the rungs end at, the last being the schedule's end.
    pub rung_ends: Vec<usize>,
    /// The rungs done so far.
    pub rungs: Vec<RungEntry>,
    /// The chosen trial (an index into `trials`), once the last rung is done.
    pub chosen: Option<usize>,
    /// Trial epochs trained after the shared ones, over all rungs so far.
    pub epochs_trained: usize,
    /// What training every trial to the end after the shared epochs costs.
    pub epochs_full_grid: usize,
    /// Trials that failed, with why (their settings cannot train: e.g. a NaN loss).
    pub failed: Vec<(usize, String)>,
    /// The probe filter the search ran with, if any.
    #[serde(default)]
    pub prune: Option<PruneParams>,
    /// With a probe filter: each trial's (accepted, attempted) translations on the
    /// probed training batches, in trial order.
    #[serde(default)]
    pub probed: Vec<(u64, u64)>,
    /// The trials the probe filter dropped before any training.
    #[serde(default)]
    pub pruned: Vec<usize>,
}

/// Where the record of the search with report key `key` is written under a suite folder.
pub fn record_path(suite_dir: &Path, key: &CellKey) -> PathBuf {
    suite_dir.join("search").join(format!("{}.json", key.run_name()))
}

/// Reads a search's record, if the search has started.
pub fn read_record(path: &Path) -> anyhow::Result<Option<SearchRecord>> {
    crate::fs::read_json_opt(path)
}

/// A trial's score at a rung ending at `end`, from its `(epoch, validation bACC)` pairs:
/// the best over epochs `from..end` (0-based; `from` is the shared epochs, or the last
/// epoch when nothing is left after them), `None` unless each of those epochs is there.
fn score(vals: &[(usize, f64)], from: usize, end: usize) -> Option<f64> {
    let from = from.min(end.saturating_sub(1));
    let own: Vec<f64> = vals.iter().filter(|(e, _)| (from..end).contains(e)).map(|&(_, v)| v).collect();
    (own.len() == end - from).then(|| own.into_iter().fold(f64::NEG_INFINITY, f64::max))
}

impl<B: AutodiffBackend> Runner<'_, B> {
    /// Trial `j` trained to `pause` epochs (`None`: to the end), starting as a fork when
    /// it has not started yet. `Ok(false)` when it was there already.
    fn train_trial(&self, j: usize, pause: Option<usize>) -> anyhow::Result<bool> {
        self.ensure_g(j)?;
        let state = RunDir::new(self.suite.cells[j].recipe.run_dir()).read_state()?;
        match &state {
            Some(s) if s.finished => return Ok(false),
            Some(s) if pause.is_some_and(|p| s.completed_epochs >= p) => return Ok(false),
            _ => {}
        }
        let fork_from = match state {
            None => self.fork_point(j)?.map(|(p, source)| (source, p.epoch)),
            Some(_) => None,
        };
        match self.train(j, fork_from, pause) {
            Ok(_) => Ok(true),
            Err(e) if matches!(stopped_by(&e), Some(Stopped::Rung(_))) => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// The search whose first trial is cell `j`, rung by rung; the chosen trial's outcome.
    pub(super) fn run_search(&self, j: usize) -> anyhow::Result<(RunOutcome, Option<ForkPlan>)> {
        let group = search_groups(&self.suite.cells)
            .into_iter()
            .find(|g| g.trials[0] == j)
            .context("a search's first trial without its search")?;
        let path = record_path(&self.suite.output_dir, &group.key);
        let mut record = self.new_record(&group);
        let mut alive: Vec<usize> = (0..group.trials.len()).collect();
        if let Some(prune) = group.prune {
            alive = self.prune(&group, prune, &mut record)?;
            crate::fs::write_json(&path, &record)?;
            if alive.is_empty() {
                anyhow::bail!(
                    "search {}: every setting accepted under {}% of its translations on {} training batches (see {})",
                    group.key.run_name(),
                    100.0 * prune.params().min_acceptance,
                    prune.params().batches,
                    path.display()
                );
            }
        }
        let mut trained_now = false;
        let mut start = group.shared;
        let ends = group.rung_ends();
        for (r, &end) in ends.iter().enumerate() {
            let last = r + 1 == ends.len();
            tracing::info!(
                "search {}: rung {} of {}: {} trials to epoch {end}",
                group.key.run_name(),
                r + 1,
                ends.len(),
                alive.len()
            );
            for &k in &alive {
                match self.train_trial(group.trials[k], (!last).then_some(end)) {
                    Ok(now) => trained_now |= now,
                    Err(e) if busy_by(&e).is_some() || stopped_by(&e).is_some() => return Err(e),
                    Err(e) => {
                        tracing::warn!("search {}: trial {} failed: {e:#}", group.key.run_name(), record.trials[k].run);
                        record.failed.retain(|(f, _)| *f != k);
                        record.failed.push((k, format!("{e:#}")));
                    }
                }
            }
            let rung = self.rung(&group, &alive, end, last)?;
            record.epochs_trained += alive.len() * (end - start);
            alive = rung.promoted.clone();
            record.chosen = if last { alive.first().copied() } else { None };
            record.rungs.push(rung);
            start = end;
            crate::fs::write_json(&path, &record)?;
        }
        let Some(chosen) = record.chosen else {
            anyhow::bail!("search {}: every trial failed (see {})", group.key.run_name(), path.display());
        };
        let cell = &self.suite.cells[group.trials[chosen]];
        tracing::info!(
            "search {}: chose {} ({}), {} trial epochs against {} for the full grid",
            group.key.run_name(),
            cell.key.run_name(),
            record.trials[chosen].setting,
            record.epochs_trained,
            record.epochs_full_grid
        );
        let run = RunDir::new(cell.recipe.run_dir());
        let metrics =
            run.read_final()?.with_context(|| format!("{}: the chosen trial has no final.json", run.root.display()))?;
        Ok((RunOutcome { run_dir: run.root, metrics, trained_now }, None))
    }

    /// Probes every trial's M2m on training batches (g standing in for f, as `m2m probe`
    /// does without `--f`) and returns the trials that accept enough; the record gets
    /// each trial's counts and the trials dropped.
    fn prune(&self, group: &SearchGroup, prune: Prune, record: &mut SearchRecord) -> anyhow::Result<Vec<usize>> {
        let mut kept = Vec::new();
        for (k, &j) in group.trials.iter().enumerate() {
            self.ensure_g(j)?;
            let cell = &self.suite.cells[j];
            let stats = probe_recipe::<B>(&cell.recipe, prune.params().batches, &self.device)
                .with_context(|| format!("search {}: probing {}", group.key.run_name(), cell.key.run_name()))?;
            let counts = (stats.total_accepted(), stats.total_attempts());
            record.probed.push(counts);
            if prune.keeps(counts.0, counts.1) {
                kept.push(k);
            } else {
                record.pruned.push(k);
            }
        }
        tracing::info!(
            "search {}: the probe kept {} of {} settings (at least {}% of translations accepted on {} training batches)",
            group.key.run_name(),
            kept.len(),
            group.trials.len(),
            100.0 * prune.params().min_acceptance,
            prune.params().batches
        );
        Ok(kept)
    }

    /// The record of a search that has not trained a rung yet.
    fn new_record(&self, group: &SearchGroup) -> SearchRecord {
        let cells = &self.suite.cells;
        let trials = group
            .trials
            .iter()
            .map(|&t| TrialEntry {
                run: cells[t].key.run_name(),
                setting: cells[t].trial.as_ref().map(|x| x.setting_text()).unwrap_or_default(),
            })
            .collect();
        SearchRecord {
            key: group.key.clone(),
            trials,
            shared: group.shared,
            rung_ends: group.rung_ends(),
            rungs: Vec::new(),
            chosen: None,
            epochs_trained: 0,
            epochs_full_grid: group.trials.len() * (group.total - group.shared),
            failed: Vec::new(),
            prune: group.prune.map(|p| p.params()),
            probed: Vec::new(),
            pruned: Vec::new(),
        }
    }

    /// The rung of `alive` trials ending at `end` epochs: their scores and who goes
    /// on (after the `last` rung: the chosen trial). Trials without a score never go on.
    fn rung(&self, group: &SearchGroup, alive: &[usize], end: usize, last: bool) -> anyhow::Result<RungEntry> {
        let mut scores = vec![None; group.trials.len()];
        for &k in alive {
            let records = RunDir::new(self.suite.cells[group.trials[k]].recipe.run_dir()).read_records()?;
            let vals: Vec<(usize, f64)> = records.iter().map(|r| (r.epoch, r.val.balanced_accuracy)).collect();
            scores[k] = score(&vals, group.shared, end);
        }
        let promoted: Vec<usize> = if last {
            choose(alive, &scores).into_iter().collect()
        } else {
            group.halving.promote(alive, &scores).into_iter().filter(|&k| scores[k].is_some()).collect()
        };
        Ok(RungEntry { end, trained: alive.to_vec(), scores: alive.iter().map(|&k| scores[k]).collect(), promoted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_is_the_best_validation_after_the_shared_epochs_and_needs_every_epoch() {
        let vals = [(7, 0.9), (8, 0.5), (9, 0.7), (10, 0.6)];
        assert_eq!(score(&vals, 8, 11), Some(0.7));
        assert_eq!(score(&vals, 8, 9), Some(0.5));
        assert_eq!(score(&vals, 8, 12), None, "epoch 11 is missing");
        assert_eq!(score(&vals[..2], 8, 10), None, "epoch 9 is missing");
        // One trial: the shared epochs are the whole schedule, the last epoch scores.
        assert_eq!(score(&vals, 11, 11), Some(0.6));
    }
}
