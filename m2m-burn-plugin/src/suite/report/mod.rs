//! `m2m report`: finished cells of one or more suite folders (shards) aggregated per
//! method and dataset/ratio into mean ± std over seeds, the difference to the baseline
//! method, published values where the spec lists them, and plots. Split by concern:
//! [`collect`] reads cells through their run directories, [`summarize`] aggregates,
//! `render` writes Markdown, CSV and plots.

mod collect;
mod metric;
mod render;
mod searches;
mod summarise;

use crate::provenance::Session;
use std::path::PathBuf;

use m2m_core::metrics::ClassificationReport;
use m2m_core::translation::GenerationStats;

use super::published::Published;
use super::spec::CellKey;

pub use collect::collect;
pub use metric::{Metric, MetricStats, Stat};
pub use render::{balanced_accuracy_table, csv, markdown, write_report};
pub use summarise::summarize;

/// A finished cell: its test metrics at the best-validation epoch, and M2m's generation
/// statistics summed over its epochs (M2m methods only).
#[derive(Debug, Clone)]
pub struct CellResult {
    /// Where the cell sits in the suite (method, data set, ratio, data seed, seed).
    pub key: CellKey,
    /// Test metrics at the best-validation epoch (fractions in [0, 1]).
    pub test: ClassificationReport,
    /// Whether the best epoch was chosen on the test set itself (no validation split,
    /// the LDAM-DRW protocol).
    pub selected_on_test: bool,
    /// M2m's generation statistics summed over the cell's epochs; `None` when no epoch
    /// recorded any (methods without M2m).
    pub m2m: Option<GenerationStats>,
    /// The cell's picture of accepted translations (M2m cells that accepted any).
    pub translations: Option<PathBuf>,
    /// The run (folder name) whose first epochs this cell took over, and how many.
    pub forked_from: Option<(String, usize)>,
    /// `max N_k / min N_k` of the training data the cell used (its data manifest).
    pub imbalance_factor: Option<f64>,
    /// Where its numbers came from: one session per process that trained it (empty for
    /// runs written before m2m recorded it).
    pub provenance: Vec<Session>,
}

/// One method on one dataset/ratio.
#[derive(Debug, Clone)]
pub struct MethodSummary {
    /// The method's name.
    pub method: String,
    /// The data set's label (see `CellKey::dataset`).
    pub dataset: String,
    /// `dataset.ratio`; `None` for a data set with its own counts (`AsIs`).
    pub ratio: Option<f64>,
    /// The imbalance factor of the training data the finished cells used.
    pub measured_ratio: Option<f64>,
    /// Cells the suite has for this method and column.
    pub expected: usize,
    /// How many of those cells finished (the statistics are over these).
    pub finished: usize,
    /// Mean ± std of each metric over the finished cells, in %.
    pub stats: MetricStats,
    /// Mean per-class test recall (%), for the per-class plot.
    pub per_class: Vec<Option<f64>>,
    /// bACC mean minus the baseline's, in points.
    pub delta_bacc: Option<f64>,
    /// The published balanced accuracy for this method and column, where one is listed.
    pub published: Option<Published>,
    /// M2m's statistics summed over runs and epochs.
    pub m2m: Option<GenerationStats>,
    /// The accepted translations of the first finished run that has a picture of them.
    pub translations: Option<(String, PathBuf)>,
    /// Whether any finished cell chose its best epoch on the test set.
    pub selected_on_test: bool,
}

impl MethodSummary {
    /// The statistic of `metric` over the finished cells; `None` when none finished or
    /// one lacks the metric.
    pub fn stat(&self, metric: Metric) -> Option<Stat> {
        self.stats.get(metric)
    }
}

/// Everything `m2m report` writes.
#[derive(Debug, Clone)]
pub struct Report {
    /// The suite's name.
    pub suite: String,
    /// The method the Δ column compares with, if the suite names one.
    pub baseline: Option<String>,
    /// The method names, in suite order (the tables' rows).
    pub methods: Vec<String>,
    /// (dataset, ratio) columns in suite order.
    pub columns: Vec<(String, Option<f64>)>,
    /// One summary per method and column, column by column.
    pub summaries: Vec<MethodSummary>,
    /// Run names of the cells without a `final.json` in any of the folders.
    pub missing: Vec<String>,
    /// How many cells the suite has, finished or not.
    pub total_cells: usize,
    /// Finished cells that started as a fork: (cell, source run, epochs taken over).
    pub forked: Vec<(String, String, usize)>,
    /// Each finished cell's provenance: (cell, its sessions), in suite order.
    pub provenance: Vec<(String, Vec<Session>)>,
    /// The searches that have started, in suite order.
    pub searches: Vec<SearchResult>,
}

/// A search as the report shows it: its record and every trial's validation curve.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// What the search did (`search/RUN_NAME.json`).
    pub record: crate::suite::SearchRecord,
    /// Each trial's validation balanced accuracy (fraction) per 0-based epoch, as far as
    /// it trained, in trial order.
    pub curves: Vec<Vec<(usize, f64)>>,
    /// Each trial's M2m generation statistics over the epochs it trained after the shared
    /// ones; `None` for a trial without M2m epochs.
    pub translations: Vec<Option<GenerationStats>>,
}

impl Report {
    /// The summary of `method` on the column (`dataset`, `ratio`); `None` when the report
    /// has no such method or column.
    pub fn summary(&self, method: &str, dataset: &str, ratio: Option<f64>) -> Option<&MethodSummary> {
        self.summaries.iter().find(|s| s.method == method && s.dataset == dataset && s.ratio == ratio)
    }

    /// The imbalance factor measured on a column's finished cells.
    pub fn measured_ratio(&self, dataset: &str, ratio: Option<f64>) -> Option<f64> {
        self.summaries.iter().filter(|s| s.dataset == dataset && s.ratio == ratio).find_map(|s| s.measured_ratio)
    }
}
