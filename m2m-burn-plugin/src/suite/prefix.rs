//! Which cells of a suite start as forks of another cell's first epochs. DRS, DRW and M2m
//! are ERM until their deferred epoch: their cells fork from the ERM cell of the same data
//! and seed there, so that shared prefix is trained once.

use super::spec::Cell;
use crate::recipe::shared_epochs;

/// A cell that starts as a fork of cell `source` (an index into the suite's cells) after
/// `epoch` epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkPlan {
    pub source: usize,
    pub epoch: usize,
}

/// For each cell, the fork it starts as (`None`: it trains from epoch 0), and for each
/// cell the epochs other cells fork from it at (which it must keep). Sources are cells
/// that train from scratch and come earlier in suite order; each fork takes the source
/// with the longest shared prefix (the first such cell on ties). Cells with their own
/// `start_from` neither fork nor are forked from.
pub fn plan_forks(cells: &[Cell]) -> (Vec<Option<ForkPlan>>, Vec<Vec<usize>>) {
    let mut plans: Vec<Option<ForkPlan>> = vec![None; cells.len()];
    let mut keep: Vec<Vec<usize>> = vec![Vec::new(); cells.len()];
    for j in 0..cells.len() {
        let recipe = &cells[j].recipe;
        if recipe.start_from.is_some() {
            continue;
        }
        let best = (0..j)
            .filter(|&i| plans[i].is_none() && cells[i].recipe.start_from.is_none())
            // A fork trains at least its last epoch itself.
            .map(|i| (i, shared_epochs(&cells[i].recipe, recipe).min(recipe.epochs - 1)))
            .filter(|&(_, e)| e >= 1)
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
