//! Which cells of a suite start as forks of another cell's first epochs. DRS, DRW and M2m
//! are ERM until their deferred epoch: their cells fork from the ERM cell of the same data
//! and seed there, so that shared prefix is trained once. A cell may also fork from a cell
//! that is itself a fork, when the two share more epochs than either shares with the
//! from-scratch cell (e.g. DRS with deferred re-weighting after DRS).

use super::search::{group_of, search_groups};
use super::spec::Cell;
use crate::recipe::{shared_epochs, BaselineSource};

/// A cell that starts as a fork of cell `source` (an index into the suite's cells) after
/// `epoch` epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkPlan {
    /// The cell forked from, as an index into the suite's cells (always an earlier cell).
    pub source: usize,
    /// How many leading epochs the fork takes over from `source`: at least 1, and fewer
    /// than the cell's epochs.
    pub epoch: usize,
}

/// The cell whose best model is cell `j`'s g (`g: Method(...)`, resolved by the suite to
/// that cell's run directory), if any.
pub fn g_cell(cells: &[Cell], j: usize) -> Option<usize> {
    let BaselineSource::Checkpoint(path) = &cells[j].recipe.m2m.as_ref()?.g else { return None };
    cells.iter().position(|c| &c.recipe.run_dir() == path)
}

/// For each cell, the fork it starts as (`None`: it trains from epoch 0), and for each
/// cell the epochs other cells fork from it at (which it must keep). A cell's source is
/// the earlier cell with the longest shared prefix (the first such cell on ties, so a
/// fork's own source wins over the fork when they share as much); the source may itself
/// be a fork, since a fork trains the epochs after its fork point like a run from scratch.
/// A source is never a cell that needs the forking cell first (as its g, or through a
/// chain of sources and g cells), so training any cell never waits on itself. Cells with
/// their own `start_from` neither fork nor are forked from.
///
/// A search's trial forks only from cells that are not trials, or from an earlier trial
/// of its own search at most at the epoch the trials part ways (every trial trains past
/// it in the first rung); no other cell forks from a trial, which may stop at any rung.
pub fn plan_forks(cells: &[Cell]) -> (Vec<Option<ForkPlan>>, Vec<Vec<usize>>) {
    let g: Vec<Option<usize>> = (0..cells.len()).map(|j| g_cell(cells, j)).collect();
    let groups = search_groups(cells);
    let group = group_of(cells, &groups);
    let may_fork = |i: usize, j: usize, e: usize| match (group[i], group[j]) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b && e <= groups[a].shared,
        (Some(_), None) => false,
    };
    let mut plans: Vec<Option<ForkPlan>> = vec![None; cells.len()];
    let mut keep: Vec<Vec<usize>> = vec![Vec::new(); cells.len()];
    for j in 0..cells.len() {
        let recipe = &cells[j].recipe;
        if recipe.start_from.is_some() {
            continue;
        }
        let best = (0..j)
            .filter(|&i| cells[i].recipe.start_from.is_none())
            // A fork trains at least its last epoch itself.
            .map(|i| (i, shared_epochs(&cells[i].recipe, recipe).min(recipe.epochs - 1)))
            // A fork of a fork starts after its source's own fork point, where the
            // source has a checkpoint of its own.
            .filter(|&(i, e)| e >= 1 && plans[i].is_none_or(|p| e > p.epoch) && may_fork(i, j, e))
            .filter(|&(i, _)| !needs(i, j, &plans, &g))
            .max_by_key(|&(i, e)| (e, std::cmp::Reverse(i)));
        if let Some((source, epoch)) = best {
            plans[j] = Some(ForkPlan { source, epoch });
            if !keep[source].contains(&epoch) {
                keep[source].push(epoch);
            }
        }
    }
    (plans, keep)
}

/// Whether training cell `from` needs cell `target` finished first: through its fork
/// source or its g, directly or along a chain of them.
fn needs(from: usize, target: usize, plans: &[Option<ForkPlan>], g: &[Option<usize>]) -> bool {
    let mut stack = vec![from];
    let mut seen = vec![false; plans.len()];
    while let Some(c) = stack.pop() {
        if c == target {
            return true;
        }
        if std::mem::replace(&mut seen[c], true) {
            continue;
        }
        stack.extend(plans[c].map(|p| p.source));
        stack.extend(g[c]);
    }
    false
}
