//! The metrics a report tabulates, as a type: table order, CSV names, headings, and how
//! each is read from a classification report.

use m2m_core::metrics::ClassificationReport;

/// One tabulated test metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Balanced accuracy: the mean per-class recall over the classes in the test set.
    BalancedAccuracy,
    /// Geometric mean of the per-class recalls; 0 when any class has recall 0.
    GeometricMean,
    /// Mean recall of the largest third of the classes by training images.
    Major,
    /// Mean recall of the classes between the largest and the smallest third.
    Neutral,
    /// Mean recall of the smallest third of the classes by training images.
    Minor,
    /// Mean recall of the classes with more than 100 training images.
    ManyShot,
    /// Mean recall of the classes with 20 to 100 training images.
    MediumShot,
    /// Mean recall of the classes with fewer than 20 training images.
    FewShot,
}

impl Metric {
    /// Every metric, in table order.
    pub const ALL: [Metric; 8] = [
        Metric::BalancedAccuracy,
        Metric::GeometricMean,
        Metric::Major,
        Metric::Neutral,
        Metric::Minor,
        Metric::ManyShot,
        Metric::MediumShot,
        Metric::FewShot,
    ];

    /// Its name in `report.csv`.
    pub fn csv_name(self) -> &'static str {
        match self {
            Metric::BalancedAccuracy => "bacc",
            Metric::GeometricMean => "gm",
            Metric::Major => "major",
            Metric::Neutral => "neutral",
            Metric::Minor => "minor",
            Metric::ManyShot => "many",
            Metric::MediumShot => "medium",
            Metric::FewShot => "few",
        }
    }

    /// Its column heading in `report.md`.
    pub fn heading(self) -> &'static str {
        match self {
            Metric::BalancedAccuracy => "bACC",
            Metric::GeometricMean => "GM",
            Metric::Major => "major",
            Metric::Neutral => "neutral",
            Metric::Minor => "minor",
            Metric::ManyShot => "many-shot",
            Metric::MediumShot => "medium-shot",
            Metric::FewShot => "few-shot",
        }
    }

    /// The value in a report, in [0, 1]; `None` where the run has no such group.
    pub fn of(self, r: &ClassificationReport) -> Option<f64> {
        match self {
            Metric::BalancedAccuracy => Some(r.balanced_accuracy),
            Metric::GeometricMean => Some(r.geometric_mean),
            Metric::Major => r.major,
            Metric::Neutral => r.neutral,
            Metric::Minor => r.minor,
            Metric::ManyShot => r.many_shot,
            Metric::MediumShot => r.medium_shot,
            Metric::FewShot => r.few_shot,
        }
    }

    fn index(self) -> usize {
        Metric::ALL.iter().position(|&m| m == self).expect("every metric is in ALL")
    }
}

/// Mean and sample standard deviation (n - 1) of a metric over runs, in %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Mean over the runs, in %.
    pub mean: f64,
    /// `None` for a single run.
    pub std: Option<f64>,
    /// How many runs the statistic is over.
    pub n: usize,
}

impl Stat {
    /// Values in [0, 1], reported in %; `None` when there are no values.
    pub fn of(values: &[f64]) -> Option<Stat> {
        if values.is_empty() {
            return None;
        }
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let std = (n > 1).then(|| (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt());
        Some(Stat { mean: 100.0 * mean, std: std.map(|s| 100.0 * s), n })
    }

    /// `mean ± std` (or the mean alone for one run), two decimals.
    pub fn text(&self) -> String {
        match self.std {
            Some(s) => format!("{:.2} ± {:.2}", self.mean, s),
            None => format!("{:.2}", self.mean),
        }
    }
}

/// One [`Stat`] per [`Metric`] (`None`: a finished run lacks the metric, or no run).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricStats([Option<Stat>; 8]);

impl MetricStats {
    /// Over the test reports of several runs: a metric any run lacks has no statistic.
    pub fn over(reports: &[&ClassificationReport]) -> Self {
        Self(Metric::ALL.map(|m| {
            let values: Option<Vec<f64>> = reports.iter().map(|r| m.of(r)).collect();
            values.and_then(|v| Stat::of(&v))
        }))
    }

    /// The statistic of `metric`; `None` when no run finished or a finished run lacks it.
    pub fn get(&self, metric: Metric) -> Option<Stat> {
        self.0[metric.index()]
    }

    /// (metric, statistic) in table order.
    pub fn iter(&self) -> impl Iterator<Item = (Metric, Option<Stat>)> + '_ {
        Metric::ALL.iter().map(|&m| (m, self.get(m)))
    }
}
