//! Comparison suites (the tables of the LDAM-DRW and M2m papers): a RON suite file
//! expands into one recipe per method × dataset × ratio × data seed × seed, `m2m suite`
//! runs them (sharded, resumable), and `m2m report` aggregates finished cells into
//! Markdown and CSV tables with plots.

mod estimate;
mod execute;
mod plot;
mod prefix;
mod progress;
mod published;
mod report;
pub mod search;
mod search_run;
mod shard;
mod spec;

pub use estimate::{estimate, trained_epochs, Estimate, MeasuredEpoch, BACKENDS, MEASURED};
pub use execute::{run_suite, run_suite_with, write_manifest, SuiteOutcome};
pub use prefix::{plan_forks, ForkPlan};
pub use published::{published, Published};
pub use report::{
    balanced_accuracy_table, collect, csv, markdown, summarize, write_report, CellResult, MethodSummary, Metric,
    MetricStats, Report, SearchResult, Stat,
};
pub use search_run::{read_record, record_path, RungEntry, SearchRecord, TrialEntry};
pub use shard::{cell_cost, deal, ShardDeal, M2M_EPOCH_COST};
pub use spec::{
    load_suite, Cell, CellKey, RawMethod, RawSearch, RawSuite, Shard, Suite, SuiteError, SuiteManifest, Trial,
};
