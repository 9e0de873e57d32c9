//! Dealing a suite's cells to shards (`m2m suite --shard I/N`): whole fork families, so
//! that no shard retrains a prefix or a g another shard trains, balanced by estimated cost.
//! Every shard computes the same deal from the suite file alone (no run state, no clock),
//! so shards started at different times, on different hosts, agree.

use super::prefix::{g_cell, ForkPlan};
use super::spec::{Cell, Shard};

/// An M2m epoch's cost in plain epochs, for dealing cells: measured with ResNet-32 on the
/// CPU (docs/benchmarks.md, "Seconds per epoch": an M2m epoch about 7x an ERM epoch;
/// `m2m-bench` put an M2m iteration at 7.1x a training step).
pub const M2M_EPOCH_COST: f64 = 7.0;

/// Which shard runs each cell, and what each shard's cells cost.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardDeal {
    /// The shard of each cell (by the cell's index in the suite).
    pub shard_of: Vec<usize>,
    /// Estimated cost of each shard's cells, in plain epochs.
    pub cost: Vec<f64>,
    /// Each cell's estimated cost, in plain epochs (what it trains itself: a fork starts
    /// at its fork point).
    pub cell_cost: Vec<f64>,
}

impl ShardDeal {
    /// The cells of `shard`, in suite order.
    pub fn cells_of(&self, shard: Shard) -> Vec<usize> {
        (0..self.shard_of.len()).filter(|&j| self.shard_of[j] == shard.index).collect()
    }
}

/// What cell `j` trains itself, in plain epochs: from its fork point (or 0) to its last
/// epoch, M2m epochs weighted by [`M2M_EPOCH_COST`].
pub fn cell_cost(cell: &Cell, plan: Option<ForkPlan>) -> f64 {
    let (plain, m2m) = super::estimate::trained_epochs(cell, plan);
    plain as f64 + M2M_EPOCH_COST * m2m as f64
}

/// Deals the cells to `count` shards: a family is a set of cells linked by forks (a
/// source and the cells forking from it), by g (`g: Method(...)`) and by a search (its
/// trials); families go, the
/// most costly first, to the shard with the least cost so far (ties: the lower shard,
/// families in suite order), so shards end up as even as whole families allow.
pub fn deal(cells: &[Cell], plans: &[Option<ForkPlan>], count: usize) -> ShardDeal {
    let n = cells.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // A search's trials train rung by rung together: one shard runs them all.
    let searches = super::search::search_groups(cells);
    let search_of = super::search::group_of(cells, &searches);
    let first_trial = |j: usize| search_of[j].map(|g| searches[g].trials[0]);
    for (j, plan) in plans.iter().enumerate() {
        for other in plan.map(|p| p.source).into_iter().chain(g_cell(cells, j)).chain(first_trial(j)) {
            let (a, b) = (root(&mut parent, j), root(&mut parent, other));
            parent[a.max(b)] = a.min(b);
        }
    }
    let cell_cost: Vec<f64> = (0..n).map(|j| cell_cost(&cells[j], plans[j])).collect();
    // Families by their first cell (roots are each family's smallest index).
    let mut families: Vec<(usize, Vec<usize>, f64)> = Vec::new();
    for (j, &cost) in cell_cost.iter().enumerate() {
        let r = root(&mut parent, j);
        match families.iter_mut().find(|f| f.0 == r) {
            Some(f) => {
                f.1.push(j);
                f.2 += cost;
            }
            None => families.push((r, vec![j], cost)),
        }
    }
    families.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    let count = count.max(1);
    let mut cost = vec![0.0f64; count];
    let mut shard_of = vec![0; n];
    for (_, members, c) in &families {
        let s = (0..count).min_by(|&a, &b| cost[a].total_cmp(&cost[b]).then(a.cmp(&b))).expect("count >= 1");
        cost[s] += c;
        for &j in members {
            shard_of[j] = s;
        }
    }
    ShardDeal { shard_of, cost, cell_cost }
}
