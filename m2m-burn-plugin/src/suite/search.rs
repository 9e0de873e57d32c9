//! Searching a method's settings with successive halving (issue 33's first part): the
//! settings to try (a grid over recipe fields, or a seeded sample of it), the rungs at
//! which trials are compared, and which trials go on. Everything here is arithmetic on the
//! suite file and on validation scores, so every shard and every resumed run computes the
//! same plan; running the trials is the suite's.
//!
//! Successive halving: every trial trains from its fork point to the first rung
//! (`first_rung` epochs after the fork); the best `1/eta` of them by validation balanced
//! accuracy go on to a rung `eta` times as long, and so on until the last epoch of the
//! schedule. Selection never looks at the test split.

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use m2m_core::seed::ChaCha12Rng;

use super::spec::{Cell, CellKey};
use crate::recipe::shared_epochs;

/// One recipe field searched, with the values tried (each as `--set FIELD=VALUE` takes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// The recipe field, e.g. `m2m.step_size`.
    pub field: String,
    /// The values, in RON as `--set` takes them, e.g. `["0.1", "0.5"]`.
    pub values: Vec<String>,
}

/// Which settings of the grid are tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sampling {
    /// Every combination of the axes' values.
    #[default]
    Grid,
    /// `trials` distinct combinations drawn with `seed` (all of them when the grid has
    /// no more), listed in grid order.
    Random {
        /// How many combinations.
        trials: usize,
        /// The seed of the draw.
        seed: u64,
    },
}

/// Successive halving's parameters as written in a suite file; [`HalvingParams::check`]
/// gives the [`Halving`] a search runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HalvingParams {
    /// Epochs after the fork point that every trial trains before the first comparison.
    pub first_rung: usize,
    /// Each rung keeps the best `1/eta` of the trials (rounded up) and trains them `eta`
    /// times as long as the rung before.
    pub eta: usize,
}

/// `m2m probe` as a first filter, as written in a suite file: settings whose M2m accepts
/// fewer than `min_acceptance` of its translations on `batches` class-balanced training
/// batches (g standing in for f) are dropped before any training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneParams {
    /// The least fraction of attempted translations accepted (gamma and the draw), in
    /// `[0, 1)`.
    pub min_acceptance: f64,
    /// Training batches probed per setting (at least 1).
    pub batches: usize,
}

/// Checked [`PruneParams`]: `min_acceptance` in `[0, 1)`, `batches >= 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prune {
    params: PruneParams,
}

impl PruneParams {
    /// The filter, if it can work.
    pub fn check(self) -> Result<Prune, SearchError> {
        if !(0.0..1.0).contains(&self.min_acceptance) {
            return Err(SearchError::Prune(format!(
                "min_acceptance must be a fraction in [0, 1), not {}",
                self.min_acceptance
            )));
        }
        if self.batches == 0 {
            return Err(SearchError::Prune("batches must be at least 1".into()));
        }
        Ok(Prune { params: self })
    }
}

impl Prune {
    /// The parameters as written.
    pub fn params(&self) -> PruneParams {
        self.params
    }

    /// Whether a setting that accepted `accepted` of `attempted` translations stays: at
    /// least `min_acceptance` of them, and at least one attempt.
    pub fn keeps(&self, accepted: u64, attempted: u64) -> bool {
        attempted > 0 && accepted as f64 >= self.params.min_acceptance * attempted as f64
    }
}

/// A value of [`HalvingParams`] that cannot work, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// `first_rung` is 0.
    #[error("search.halving.first_rung must be at least 1 epoch, not 0")]
    EmptyRung,
    /// `eta` is below 2.
    #[error("search.halving.eta must be at least 2 (it is {0}): 1 would never drop a trial")]
    Eta(usize),
    /// An axis without values, or a field named twice.
    #[error("search axis `{0}`: {1}")]
    Axis(String, String),
    /// A random sample of no trials.
    #[error("search.sampling: Random(trials: 0) tries nothing")]
    NoTrials,
    /// A [`PruneParams`] value that cannot work.
    #[error("search.prune: {0}")]
    Prune(String),
}

/// Checked successive-halving parameters: `first_rung >= 1` and `eta >= 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Halving {
    first_rung: usize,
    eta: usize,
}

impl HalvingParams {
    /// The parameters, if they can work.
    pub fn check(self) -> Result<Halving, SearchError> {
        if self.first_rung == 0 {
            return Err(SearchError::EmptyRung);
        }
        if self.eta < 2 {
            return Err(SearchError::Eta(self.eta));
        }
        Ok(Halving { first_rung: self.first_rung, eta: self.eta })
    }
}

impl Halving {
    /// The epochs (counted from the run's start, exclusive ends) at which the rungs of a
    /// trial forked after epoch `fork` end, the last being `total`: `fork + first_rung`,
    /// `fork + first_rung * eta`, ..., `total`.
    pub fn rung_ends(&self, fork: usize, total: usize) -> Vec<usize> {
        let mut ends = Vec::new();
        let mut budget = self.first_rung;
        while fork + budget < total {
            ends.push(fork + budget);
            budget = budget.saturating_mul(self.eta);
        }
        ends.push(total.max(fork));
        ends
    }

    /// How many of `alive` trials go on to the next rung: `ceil(alive / eta)`, at least 1.
    pub fn keep(&self, alive: usize) -> usize {
        alive.div_ceil(self.eta).max(1)
    }

    /// The trials (indices into `scores`) that go on from a rung where `alive` trained:
    /// the best [`Halving::keep`] by score, higher first; a missing or NaN score counts as
    /// the worst; ties go to the lower index, so the choice is the same on every machine.
    pub fn promote(&self, alive: &[usize], scores: &[Option<f64>]) -> Vec<usize> {
        let mut ranked = rank(alive, scores);
        ranked.truncate(self.keep(alive.len()));
        ranked.sort_unstable();
        ranked
    }

    /// Epochs trained by `trials` trials forked after `fork` of a `total`-epoch schedule:
    /// (successive halving, every trial to the end). The first assumes no ties are left
    /// to chance: it counts [`Halving::keep`] trials per rung.
    pub fn epochs(&self, trials: usize, fork: usize, total: usize) -> (usize, usize) {
        let mut alive = trials;
        let mut start = fork;
        let mut spent = 0;
        for end in self.rung_ends(fork, total) {
            spent += alive * (end - start);
            start = end;
            alive = self.keep(alive);
        }
        (spent, trials * total.saturating_sub(fork))
    }
}

/// `alive` ordered best first by score (missing and NaN last, ties to the lower index).
fn rank(alive: &[usize], scores: &[Option<f64>]) -> Vec<usize> {
    let score = |i: usize| scores.get(i).copied().flatten().filter(|s| !s.is_nan()).unwrap_or(f64::NEG_INFINITY);
    let mut ranked = alive.to_vec();
    ranked.sort_by(|&a, &b| score(b).total_cmp(&score(a)).then(a.cmp(&b)));
    ranked
}

/// The trial chosen among `alive` after the last rung: the best score, ties to the lower
/// index; `None` when no trial has a score (all failed).
pub fn choose(alive: &[usize], scores: &[Option<f64>]) -> Option<usize> {
    rank(alive, scores).into_iter().next().filter(|&i| scores.get(i).copied().flatten().is_some_and(|s| !s.is_nan()))
}

/// One search on one data set, ratio, data seed and seed: its trials and where its rungs
/// end.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchGroup {
    /// The place of the search in the report (the searched method's name).
    pub key: CellKey,
    /// The trials' cell indices, in trial order.
    pub trials: Vec<usize>,
    /// Epochs all trials train identically: they part ways after it, and the rungs count
    /// from it (the whole schedule for a search of one trial).
    pub shared: usize,
    /// The trials' epochs: the last rung ends there.
    pub total: usize,
    /// The search's successive halving.
    pub halving: Halving,
    /// The probe that drops settings before any training, if the search has one.
    pub prune: Option<Prune>,
}

impl SearchGroup {
    /// The epoch counts at which the rungs end, the last being [`SearchGroup::total`].
    pub fn rung_ends(&self) -> Vec<usize> {
        self.halving.rung_ends(self.shared, self.total)
    }

    /// For each trial, the epoch count it trains to if the trials went on in trial
    /// order (each rung keeping [`Halving::keep`]): together they train what
    /// [`Halving::epochs`] counts.
    pub fn planned_ends(&self) -> Vec<usize> {
        let mut ends = vec![self.shared; self.trials.len()];
        let mut alive = self.trials.len();
        for end in self.rung_ends() {
            ends[..alive].fill(end);
            alive = self.halving.keep(alive);
        }
        ends
    }
}

/// The searches among `cells`, in the order of their first trials.
pub fn search_groups(cells: &[Cell]) -> Vec<SearchGroup> {
    let mut groups: Vec<SearchGroup> = Vec::new();
    for (j, c) in cells.iter().enumerate() {
        let Some(t) = &c.trial else { continue };
        match groups.iter_mut().find(|g| g.key == t.group) {
            Some(g) => g.trials.push(j),
            None => groups.push(SearchGroup {
                key: t.group.clone(),
                trials: vec![j],
                shared: 0,
                total: c.recipe.epochs,
                halving: t.halving,
                prune: t.prune,
            }),
        }
    }
    for g in &mut groups {
        let first = &cells[g.trials[0]].recipe;
        g.shared = match g.trials[1..].iter().map(|&t| shared_epochs(first, &cells[t].recipe)).min() {
            Some(shared) => shared.min(g.total),
            None => g.total,
        };
    }
    groups
}

/// The search each cell is a trial of, as an index into [`search_groups`].
pub fn group_of(cells: &[Cell], groups: &[SearchGroup]) -> Vec<Option<usize>> {
    let mut of = vec![None; cells.len()];
    for (g, group) in groups.iter().enumerate() {
        for &t in &group.trials {
            of[t] = Some(g);
        }
    }
    of
}

/// The settings to try: each a list of `(field, value)` overrides, in grid order (the
/// last axis varies fastest).
pub fn settings(axes: &[Axis], sampling: Sampling) -> Result<Vec<Vec<(String, String)>>, SearchError> {
    for (i, a) in axes.iter().enumerate() {
        if a.values.is_empty() {
            return Err(SearchError::Axis(a.field.clone(), "no values".into()));
        }
        if axes[..i].iter().any(|b| b.field == a.field) {
            return Err(SearchError::Axis(a.field.clone(), "named twice".into()));
        }
    }
    let size: usize = axes.iter().map(|a| a.values.len()).product();
    let chosen: Vec<usize> = match sampling {
        Sampling::Grid => (0..size).collect(),
        Sampling::Random { trials: 0, .. } => return Err(SearchError::NoTrials),
        Sampling::Random { trials, seed } if trials < size => {
            let mut rng = ChaCha12Rng::seed_from_u64(seed);
            let mut picked = rand::seq::index::sample(&mut rng, size, trials).into_vec();
            picked.sort_unstable();
            picked
        }
        Sampling::Random { .. } => (0..size).collect(),
    };
    Ok(chosen.into_iter().map(|k| setting(axes, k)).collect())
}

/// The `k`-th combination of the grid (mixed radix, last axis fastest).
fn setting(axes: &[Axis], mut k: usize) -> Vec<(String, String)> {
    let mut out = vec![(String::new(), String::new()); axes.len()];
    for (i, a) in axes.iter().enumerate().rev() {
        out[i] = (a.field.clone(), a.values[k % a.values.len()].clone());
        k /= a.values.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halving(first_rung: usize, eta: usize) -> Halving {
        HalvingParams { first_rung, eta }.check().unwrap()
    }

    #[test]
    fn rungs_grow_by_eta_from_the_fork_and_end_at_the_last_epoch() {
        assert_eq!(halving(2, 2).rung_ends(8, 20), [10, 12, 16, 20]);
        assert_eq!(halving(4, 3).rung_ends(160, 200), [164, 172, 196, 200]);
        assert_eq!(halving(50, 2).rung_ends(160, 200), [200]);
        assert_eq!(HalvingParams { first_rung: 0, eta: 2 }.check(), Err(SearchError::EmptyRung));
        assert_eq!(HalvingParams { first_rung: 1, eta: 1 }.check(), Err(SearchError::Eta(1)));
    }

    #[test]
    fn the_best_fraction_goes_on_with_ties_to_the_lower_index_and_nan_last() {
        let h = halving(1, 2);
        let scores = [Some(0.5), Some(0.7), Some(f64::NAN), Some(0.7), None, Some(0.6)];
        assert_eq!(h.promote(&[0, 1, 2, 3, 4, 5], &scores), [1, 3, 5]);
        assert_eq!(h.promote(&[1, 3, 5], &scores), [1, 3]);
        assert_eq!(h.promote(&[1, 3], &scores), [1]);
        assert_eq!(h.promote(&[1], &scores), [1]);
        assert_eq!(halving(1, 3).keep(7), 3);
    }

    #[test]
    fn the_probe_filter_keeps_settings_that_accept_enough() {
        let p = PruneParams { min_acceptance: 0.01, batches: 4 }.check().unwrap();
        assert!(p.keeps(1, 100) && p.keeps(2, 100) && !p.keeps(0, 100) && !p.keeps(0, 0));
        assert!(PruneParams { min_acceptance: 0.0, batches: 1 }.check().unwrap().keeps(0, 5));
        assert!(PruneParams { min_acceptance: 1.0, batches: 4 }.check().is_err());
        assert!(PruneParams { min_acceptance: f64::NAN, batches: 4 }.check().is_err());
        assert!(PruneParams { min_acceptance: 0.01, batches: 0 }.check().unwrap_err().to_string().contains("batches"));
    }

    #[test]
    fn halving_spends_fewer_epochs_than_the_full_grid() {
        // 8 trials forked at 8 of 20: rungs end at 10, 12, 16, 20 with 8, 4, 2, 1 trials.
        assert_eq!(halving(2, 2).epochs(8, 8, 20), (8 * 2 + 4 * 2 + 2 * 4 + 4, 8 * 12));
        assert_eq!(halving(2, 2).epochs(1, 8, 20), (12, 12));
    }

    fn axes() -> Vec<Axis> {
        vec![
            Axis { field: "m2m.step_size".into(), values: vec!["0.1".into(), "0.5".into(), "1.0".into()] },
            Axis { field: "m2m.gamma".into(), values: vec!["0.9".into(), "0.99".into()] },
        ]
    }

    #[test]
    fn the_grid_lists_every_combination_and_a_sample_is_a_seeded_subset_in_grid_order() {
        let grid = settings(&axes(), Sampling::Grid).unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(grid[1], [("m2m.step_size".to_string(), "0.1".to_string()), ("m2m.gamma".into(), "0.99".into())]);
        assert_eq!(grid[5][0].1, "1.0");
        let a = settings(&axes(), Sampling::Random { trials: 4, seed: 7 }).unwrap();
        let b = settings(&axes(), Sampling::Random { trials: 4, seed: 7 }).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 4);
        let positions: Vec<usize> = a.iter().map(|s| grid.iter().position(|g| g == s).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        let others: Vec<_> =
            (0..20).map(|seed| settings(&axes(), Sampling::Random { trials: 4, seed }).unwrap()).collect();
        assert!(others.iter().any(|o| o != &a), "the seed changes nothing");
        assert_eq!(settings(&axes(), Sampling::Random { trials: 10, seed: 0 }).unwrap(), grid);
    }

    #[test]
    fn an_empty_or_repeated_axis_and_an_empty_sample_are_refused() {
        let mut bad = axes();
        bad[1].values.clear();
        assert!(matches!(settings(&bad, Sampling::Grid), Err(SearchError::Axis(f, _)) if f == "m2m.gamma"));
        let mut twice = axes();
        twice[1].field = "m2m.step_size".into();
        assert!(settings(&twice, Sampling::Grid).unwrap_err().to_string().contains("named twice"));
        assert_eq!(settings(&axes(), Sampling::Random { trials: 0, seed: 0 }), Err(SearchError::NoTrials));
    }
}
