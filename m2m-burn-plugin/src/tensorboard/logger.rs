//! burn-train's `MetricLogger` writing TensorBoard event files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

use super::event::EventWriter;

/// Every numeric metric burn-train reports, as TensorBoard scalars: `SPLIT/NAME` per
/// iteration (the step counts iterations of that split from the first epoch of this
/// process) and `epoch/SPLIT/NAME` (the epoch's running mean) at the end of each epoch,
/// with the epoch as step. One event file in `dir` (created), which is one TensorBoard
/// run. It also keeps the values it was given, so that burn-train's checkpointing and
/// early-stopping strategies can read them back (`read_numeric`) with no other logger.
///
/// ```ignore
/// let training = SupervisedTraining::new(dir, train, valid)
///     .with_metric_logger(TensorBoardLogger::new(format!("{dir}/tensorboard")));
/// ```
///
/// What burn-train then does with it, by hand: it defines each metric, logs every
/// iteration's values and closes each epoch (epochs count from 1).
///
/// ```
/// use std::sync::Arc;
///
/// use burn::train::logger::MetricLogger;
/// use burn::train::metric::store::{EpochSummary, MetricsUpdate, NumericMetricUpdate, Split};
/// use burn::train::metric::{
///     MetricAttributes, MetricDefinition, MetricEntry, MetricId, NumericEntry, SerializedEntry,
/// };
/// use m2m_burn_plugin::tensorboard::TensorBoardLogger;
///
/// let artifacts = tempfile::tempdir()?;
/// let dir = artifacts.path().join("tensorboard");
/// let mut logger = TensorBoardLogger::new(&dir);
///
/// let id = MetricId::new(Arc::new("Loss".to_string()));
/// logger.log_metric_definition(MetricDefinition {
///     metric_id: id.clone(),
///     name: "Loss".to_string(),
///     description: None,
///     attributes: MetricAttributes::None,
/// });
/// // Each iteration's loss and the epoch's running mean so far.
/// for (count, loss, mean) in [(1, 2.3, 2.3), (2, 1.9, 2.1)] {
///     let entry = MetricEntry::new(id.clone(), SerializedEntry::new(format!("{loss}"), format!("{loss}")));
///     let running = NumericEntry::Aggregated { aggregated_value: mean, count };
///     let update = NumericMetricUpdate::new(entry, NumericEntry::Value(loss), running);
///     logger.log(MetricsUpdate::new(Vec::new(), vec![update]), 1, &Split::Train);
/// }
/// logger.log_epoch_summary(EpochSummary::new(1, Split::Train));
///
/// // `train/Loss` at steps 1 and 2 and `epoch/train/Loss` at step 1, in one event file.
/// let files: Vec<String> = std::fs::read_dir(&dir)?
///     .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(files.len(), 1);
/// assert!(files[0].starts_with("events.out.tfevents."), "{files:?}");
/// // burn-train's checkpointing and early stopping read the values back.
/// assert_eq!(logger.read_numeric("Loss", 1, &Split::Train)?.len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TensorBoardLogger {
    dir: PathBuf,
    writer: Option<EventWriter>,
    names: HashMap<MetricId, String>,
    steps: HashMap<String, i64>,
    /// The last running (epoch-mean) value of each (split, name) in the current epoch.
    running: HashMap<(String, String), f64>,
    kept: HashMap<(String, usize, String), Vec<NumericEntry>>,
    failed: bool,
}

impl TensorBoardLogger {
    /// Writes into `dir` (e.g. `ARTIFACT_DIR/tensorboard`); the folder is created with the
    /// first record. An error while writing is logged once and stops the logging, never
    /// the training.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            writer: None,
            names: HashMap::new(),
            steps: HashMap::new(),
            running: HashMap::new(),
            kept: HashMap::new(),
            failed: false,
        }
    }

    fn write(&mut self, tag: &str, value: f64, step: i64) {
        if self.failed {
            return;
        }
        if self.writer.is_none() {
            match EventWriter::create(&self.dir) {
                Ok(w) => self.writer = Some(w),
                Err(e) => {
                    tracing::warn!("TensorBoard: creating an event file in {}: {e}; not logging", self.dir.display());
                    self.failed = true;
                    return;
                }
            }
        }
        if let Some(w) = self.writer.as_mut() {
            if let Err(e) = w.add_scalar(tag, value as f32, step) {
                tracing::warn!("TensorBoard: writing {}: {e}; not logging any more", w.path().display());
                self.failed = true;
            }
        }
    }
}

/// `train`, `valid`, `test` or `test/TAG`.
fn split_name(split: &Split) -> String {
    match split {
        Split::Train => "train".into(),
        Split::Valid => "valid".into(),
        Split::Test(None) => "test".into(),
        Split::Test(Some(tag)) => format!("test/{tag}"),
    }
}

/// A metric name as a tag part: spaces to underscores (TensorBoard splits on `/`).
fn tag_part(name: &str) -> String {
    name.trim().replace([' ', '/'], "_")
}

impl MetricLogger for TensorBoardLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let split = split_name(split);
        let step = {
            let s = self.steps.entry(split.clone()).or_insert(0);
            *s += 1;
            *s
        };
        for m in update.entries_numeric {
            let name = self.names.get(&m.entry.metric_id).cloned().unwrap_or_else(|| "metric".into());
            self.kept.entry((split.clone(), epoch, name.clone())).or_default().push(m.numeric_entry.clone());
            self.running.insert((split.clone(), name.clone()), m.running_entry.current());
            self.write(&format!("{split}/{}", tag_part(&name)), m.numeric_entry.current(), step);
        }
    }

    fn read_numeric(&mut self, name: &str, epoch: usize, split: &Split) -> Result<Vec<NumericEntry>, String> {
        Ok(self.kept.get(&(split_name(split), epoch, name.to_string())).cloned().unwrap_or_default())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let split = split_name(&summary.split);
        let mut ended: Vec<(String, f64)> =
            self.running.iter().filter(|((s, _), _)| *s == split).map(|((_, n), v)| (n.clone(), *v)).collect();
        ended.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in ended {
            self.write(&format!("epoch/{split}/{}", tag_part(&name)), value, summary.epoch_number as i64);
        }
        self.running.retain(|(s, _), _| *s != split);
    }
}
