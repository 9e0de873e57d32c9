//! `m2m report`: finished cells of one or more suite folders (shards) aggregated per
//! method and dataset/ratio into mean ± std over seeds, the difference to the baseline
//! method, published values where the spec lists them, and plots. Split by concern:
//! [`collect`] reads cells through their run directories, [`summarize`] aggregates,
//! `render` writes Markdown, CSV and plots.

mod collect;
mod metric;
mod render;
mod summarise;

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
    pub key: CellKey,
    pub test: ClassificationReport,
    pub selected_on_test: bool,
    pub m2m: Option<GenerationStats>,
    /// The cell's picture of accepted translations (M2m cells that accepted any).
    pub translations: Option<PathBuf>,
    /// The run (folder name) whose first epochs this cell took over, and how many.
    pub forked_from: Option<(String, usize)>,
    /// `max N_k / min N_k` of the training data the cell used (its data manifest).
    pub imbalance_factor: Option<f64>,
}

/// One method on one dataset/ratio.
#[derive(Debug, Clone)]
pub struct MethodSummary {
    pub method: String,
    /// The data set's label (see `CellKey::dataset`).
    pub dataset: String,
    /// `dataset.ratio`; `None` for a data set with its own counts (`AsIs`).
    pub ratio: Option<f64>,
    /// The imbalance factor of the training data the finished cells used.
    pub measured_ratio: Option<f64>,
    /// Cells the suite has for this method and column, and how many finished.
    pub expected: usize,
    pub finished: usize,
    pub stats: MetricStats,
    /// Mean per-class test recall (%), for the per-class plot.
    pub per_class: Vec<Option<f64>>,
    /// bACC mean minus the baseline's, in points.
    pub delta_bacc: Option<f64>,
    pub published: Option<Published>,
    /// M2m's statistics summed over runs and epochs.
    pub m2m: Option<GenerationStats>,
    /// The accepted translations of the first finished run that has a picture of them.
    pub translations: Option<(String, PathBuf)>,
    pub selected_on_test: bool,
}

impl MethodSummary {
    pub fn stat(&self, metric: Metric) -> Option<Stat> {
        self.stats.get(metric)
    }
}

/// Everything `m2m report` writes.
#[derive(Debug, Clone)]
pub struct Report {
    pub suite: String,
    pub baseline: Option<String>,
    pub methods: Vec<String>,
    /// (dataset, ratio) columns in suite order.
    pub columns: Vec<(String, Option<f64>)>,
    pub summaries: Vec<MethodSummary>,
    /// Run names of the cells without a `final.json` in any of the folders.
    pub missing: Vec<String>,
    pub total_cells: usize,
    /// Finished cells that started as a fork: (cell, source run, epochs taken over).
    pub forked: Vec<(String, String, usize)>,
}

impl Report {
    pub fn summary(&self, method: &str, dataset: &str, ratio: Option<f64>) -> Option<&MethodSummary> {
        self.summaries.iter().find(|s| s.method == method && s.dataset == dataset && s.ratio == ratio)
    }

    /// The imbalance factor measured on a column's finished cells.
    pub fn measured_ratio(&self, dataset: &str, ratio: Option<f64>) -> Option<f64> {
        self.summaries.iter().filter(|s| s.dataset == dataset && s.ratio == ratio).find_map(|s| s.measured_ratio)
    }
}
