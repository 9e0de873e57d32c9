//! Progress for people reading a log (CI, pipes, files): at most one line every few
//! seconds, each complete on its own: epoch, batch, throughput, the epoch's running loss
//! and accuracy, the learning rate and the time left. burn's CLI renderer prints every
//! batch, and the formatted entries burn hands to renderers run the epoch and batch values
//! together ("epoch 69.53 % - batch 69.53 %"), so this renderer keeps its own numbers. On a
//! terminal burn's own dashboard is used instead (see `train`).
//!
//! ```text
//! epoch 3/12, batch 120/194 (62%), 412 img/s, loss 0.8123, accuracy 71.2%, lr 1.00e-1, ETA epoch 14 s, run 2 min 31 s
//! ```

use std::time::{Duration, Instant};

use burn::data::dataloader::Progress;
use burn::train::metric::{MetricAttributes, MetricDefinition, NumericEntry};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::LearnerSummary;

use crate::terminal::duration;

/// A [`MetricsRenderer`] for logs; usable in any burn-train program
/// (`SupervisedTraining::renderer(LogRenderer::new(Duration::from_secs(15)))`).
pub struct LogRenderer {
    every: Duration,
    last_line: Instant,
    metrics: Vec<Tracked>,
    epoch: Option<Epoch>,
    /// Seconds from one epoch's first batch to the next one's (training and evaluation).
    epoch_seconds: Option<f64>,
    /// Images per batch, learnt from the first full batch.
    batch_size: Option<usize>,
}

/// The epoch in progress: its number and where and when this renderer first saw it.
struct Epoch {
    number: usize,
    seen_at: Instant,
    items_at: usize,
}

/// A numeric training metric's mean over the epoch so far.
struct Tracked {
    id: String,
    name: String,
    percent: bool,
    sum: f64,
    count: usize,
    latest: (f64, usize),
}

impl LogRenderer {
    /// A renderer writing at most one line per `every` (through `tracing`, at info level).
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last_line: Instant::now(),
            metrics: Vec::new(),
            epoch: None,
            epoch_seconds: None,
            batch_size: None,
        }
    }

    /// The line for `item`, or `None` before the renderer knows where training is.
    fn line(&self, item: &TrainingProgress) -> Option<String> {
        let epoch = self.epoch.as_ref()?;
        let progress = item.progress.as_ref()?;
        let mut parts = vec![format!("epoch {}/{}", epoch.number, item.global_progress.items_total)];
        if let Some(j) = item.iteration {
            let percent = 100 * progress.items_processed / progress.items_total.max(1);
            match self.batch_size {
                Some(b) => parts.push(format!("batch {j}/{} ({percent}%)", progress.items_total.div_ceil(b))),
                None => parts.push(format!("batch {j} ({percent}%)")),
            }
        }
        let elapsed = epoch.seen_at.elapsed().as_secs_f64();
        let done = progress.items_processed.saturating_sub(epoch.items_at);
        let rate = (elapsed > 0.0 && done > 0).then(|| done as f64 / elapsed);
        if let Some(rate) = rate {
            parts.push(format!("{rate:.0} img/s"));
        }
        // Loss, then accuracy, then the learning rate, whatever order burn registered them in.
        let mut metrics: Vec<&Tracked> = self.metrics.iter().filter(|m| m.count > 0).collect();
        metrics.sort_by_key(|m| (m.is_learning_rate(), m.percent));
        parts.extend(metrics.into_iter().map(Tracked::formatted));
        if let Some(rate) = rate {
            let epoch_left = progress.items_total.saturating_sub(progress.items_processed) as f64 / rate;
            let mut eta = format!("ETA epoch {}", duration(epoch_left));
            let epochs_left = item.global_progress.items_total.saturating_sub(epoch.number);
            if let (Some(per_epoch), true) = (self.epoch_seconds, epochs_left > 0) {
                eta.push_str(&format!(", run {}", duration(epoch_left + epochs_left as f64 * per_epoch)));
            }
            parts.push(eta);
        }
        Some(parts.join(", "))
    }

    /// Starts a new epoch's means with the batch just reported (its first seen).
    fn begin_epoch(&mut self, number: usize, progress: Option<&Progress>) {
        let now = Instant::now();
        if let Some(previous) = &self.epoch {
            self.epoch_seconds = Some(now.duration_since(previous.seen_at).as_secs_f64());
        }
        for m in &mut self.metrics {
            (m.sum, m.count) = (m.latest.0 * m.latest.1 as f64, m.latest.1);
        }
        self.epoch = Some(Epoch { number, seen_at: now, items_at: progress.map_or(0, |p| p.items_processed) });
    }
}

/// How often [`LogRenderer`] writes in `m2m`'s runs: `M2M_LOG_EVERY` seconds (e.g. `60`,
/// `0.5`), 15 by default.
pub fn log_interval() -> Duration {
    const DEFAULT: Duration = Duration::from_secs(15);
    match std::env::var("M2M_LOG_EVERY") {
        Err(_) => DEFAULT,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
            _ => {
                tracing::warn!("M2M_LOG_EVERY={text:?} is not a number of seconds >= 0; writing progress every 15 s");
                DEFAULT
            }
        },
    }
}

impl Tracked {
    fn is_learning_rate(&self) -> bool {
        self.name.to_lowercase().contains("learning rate")
    }

    fn formatted(&self) -> String {
        let mean = self.sum / self.count as f64;
        let name = self.name.to_lowercase();
        if self.percent {
            format!("{name} {mean:.1}%")
        } else if self.is_learning_rate() {
            format!("lr {mean:.2e}")
        } else {
            format!("{name} {mean:.4}")
        }
    }
}

impl MetricsRendererTraining for LogRenderer {
    fn update_train(&mut self, state: MetricState) {
        let MetricState::Numeric(entry, value) = state else { return };
        let (value, count) = match value {
            NumericEntry::Value(v) => (v, 1),
            NumericEntry::Aggregated { aggregated_value, count } => (aggregated_value, count.max(1)),
        };
        let id = format!("{:?}", entry.metric_id);
        if let Some(m) = self.metrics.iter_mut().find(|m| m.id == id) {
            m.sum += value * count as f64;
            m.count += count;
            m.latest = (value, count);
        }
    }

    fn update_valid(&mut self, _state: MetricState) {}

    fn render_train(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        let number = item.global_progress.items_processed;
        if self.epoch.as_ref().is_none_or(|e| e.number != number) {
            self.begin_epoch(number, item.progress.as_ref());
        }
        if let (Some(j), Some(p)) = (item.iteration, item.progress.as_ref()) {
            if j > 0 && p.items_processed < p.items_total {
                self.batch_size.get_or_insert(p.items_processed / j);
            }
        }
        if self.last_line.elapsed() < self.every {
            return;
        }
        if let Some(line) = self.line(&item) {
            self.last_line = Instant::now();
            tracing::info!("{line}");
        }
    }

    fn render_valid(&mut self, _: TrainingProgress, _: Vec<ProgressType>) {}

    fn on_train_end(&mut self, _: Option<LearnerSummary>) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for LogRenderer {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
    fn render_test(&mut self, _: EvaluationProgress, _: Vec<ProgressType>) {}
}

impl MetricsRenderer for LogRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        let MetricAttributes::Numeric(attributes) = &definition.attributes else { return };
        let id = format!("{:?}", definition.metric_id);
        if self.metrics.iter().any(|m| m.id == id) {
            return;
        }
        self.metrics.push(Tracked {
            id,
            name: definition.name.to_string(),
            percent: attributes.unit.as_deref() == Some("%"),
            sum: 0.0,
            count: 0,
            latest: (0.0, 0),
        });
    }
}
