//! Progress for people reading a log (CI, pipes): at most one line every few seconds,
//! instead of burn's CLI renderer, which prints every batch. On a terminal burn's own
//! dashboard is used instead (see `run`).

use std::time::{Duration, Instant};

use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::LearnerSummary;

pub struct LogRenderer {
    every: Duration,
    last: Instant,
    latest: Vec<(String, String)>,
    names: Vec<(String, String)>,
}

impl LogRenderer {
    pub fn new(every: Duration) -> Self {
        Self { every, last: Instant::now(), latest: Vec::new(), names: Vec::new() }
    }

    fn remember(&mut self, state: MetricState) {
        let entry = match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => e,
        };
        let id = format!("{:?}", entry.metric_id);
        let name = self.names.iter().find(|(i, _)| *i == id).map(|(_, n)| n.clone()).unwrap_or(id);
        match self.latest.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = entry.serialized_entry.formatted,
            None => self.latest.push((name, entry.serialized_entry.formatted)),
        }
    }
}

impl MetricsRendererTraining for LogRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.remember(state);
    }
    fn update_valid(&mut self, _state: MetricState) {}
    fn render_train(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        if self.last.elapsed() < self.every {
            return;
        }
        self.last = Instant::now();
        let batch = item.progress.map(|p| format!("{}/{}", p.items_processed, p.items_total)).unwrap_or_default();
        let metrics: Vec<String> = self.latest.iter().map(|(_, v)| v.clone()).collect();
        tracing::info!(
            "epoch {}/{} batch {batch} {}",
            item.global_progress.items_processed,
            item.global_progress.items_total,
            metrics.join(" ")
        );
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
        self.names.push((format!("{:?}", definition.metric_id), definition.name.to_string()));
    }
}
