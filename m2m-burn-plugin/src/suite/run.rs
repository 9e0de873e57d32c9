//! Running a suite: every cell of this shard in order, skipping finished cells and
//! resuming interrupted ones (through `run_recipe`), and going on past a failed cell.

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;

use super::spec::{suite_to_ron, Shard, Suite};
use crate::run::{run_recipe, Progress};

/// What one `m2m suite` invocation did.
#[derive(Debug, Default)]
pub struct SuiteOutcome {
    /// Cells trained (or finished after an interruption) now.
    pub trained: Vec<String>,
    /// Cells that were already finished.
    pub skipped: Vec<String>,
    /// Cells that stopped with an error, and why.
    pub failed: Vec<(String, String)>,
}

/// Writes the suite's manifest (what `m2m report` reads) and its resolved file.
pub fn write_manifest(suite: &Suite) -> anyhow::Result<()> {
    let dir = &suite.output_dir;
    let json = serde_json::to_string_pretty(&suite.manifest())?;
    crate::fs::write_atomic(&dir.join("suite.json"), json.as_bytes()).with_context(|| format!("writing {}", dir.join("suite.json").display()))?;
    crate::fs::write_atomic(&dir.join("suite.resolved.ron"), suite_to_ron(&suite.raw).as_bytes())
        .with_context(|| format!("writing {}", dir.join("suite.resolved.ron").display()))?;
    Ok(())
}

/// Runs the cells of `shard`. A cell's results are complete once its `final.json` is
/// written (atomically, last); killing the process at any point loses at most the epoch
/// in progress of one cell, which the next invocation resumes.
pub fn run_suite<B: AutodiffBackend>(suite: &Suite, shard: Shard, device: B::Device, progress: Progress) -> anyhow::Result<SuiteOutcome> {
    write_manifest(suite)?;
    let mine: Vec<_> = suite.cells.iter().enumerate().filter(|(j, _)| shard.owns(*j)).map(|(_, c)| c).collect();
    tracing::info!("suite {}: {} of {} cells in shard {}/{}", suite.name, mine.len(), suite.cells.len(), shard.index, shard.count);
    let mut outcome = SuiteOutcome::default();
    for (i, cell) in mine.iter().enumerate() {
        let name = cell.key.run_name();
        tracing::info!("suite {}: cell {}/{}: {name}", suite.name, i + 1, mine.len());
        match run_recipe::<B>(&cell.recipe, device.clone(), progress) {
            Ok(o) if o.trained_now => outcome.trained.push(name),
            Ok(_) => outcome.skipped.push(name),
            Err(e) => {
                tracing::error!("cell {name} failed: {e:#}");
                outcome.failed.push((name, format!("{e:#}")));
            }
        }
    }
    Ok(outcome)
}
