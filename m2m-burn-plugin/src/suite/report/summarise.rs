//! Aggregating cell results per method and dataset/ratio column.

use super::metric::{Metric, MetricStats, Stat};
use super::{CellResult, MethodSummary, Report};
use crate::suite::published::published;
use crate::suite::spec::{CellKey, SuiteManifest};

/// Aggregates cell results per method and column (public for tests of the formulas).
pub fn summarize(manifest: &SuiteManifest, results: &[CellResult], missing: Vec<String>) -> Report {
    let mut columns: Vec<(String, Option<f64>)> = Vec::new();
    for k in &manifest.cells {
        if !columns.iter().any(|(d, r)| *d == k.dataset && *r == k.ratio) {
            columns.push((k.dataset.clone(), k.ratio));
        }
    }
    let mut summaries = Vec::new();
    for (dataset, ratio) in &columns {
        let ratio = *ratio;
        for method in &manifest.methods {
            let in_cell = |k: &CellKey| &k.method == method && &k.dataset == dataset && k.ratio == ratio;
            let expected = manifest.cells.iter().filter(|k| in_cell(k)).count();
            let runs: Vec<&CellResult> = results.iter().filter(|r| in_cell(&r.key)).collect();
            let stats = MetricStats::over(&runs.iter().map(|r| &r.test).collect::<Vec<_>>());
            let classes = runs.first().map_or(0, |r| r.test.per_class_recall.len());
            let per_class = (0..classes)
                .map(|k| {
                    let v: Option<Vec<f64>> =
                        runs.iter().map(|r| r.test.per_class_recall.get(k).copied().flatten()).collect();
                    v.and_then(|v| Stat::of(&v)).map(|s| s.mean)
                })
                .collect();
            let m2m = runs.iter().filter_map(|r| r.m2m.clone()).reduce(|mut a, b| {
                a.merge(&b);
                a
            });
            summaries.push(MethodSummary {
                method: method.clone(),
                dataset: dataset.clone(),
                ratio,
                measured_ratio: runs.iter().find_map(|r| r.imbalance_factor),
                expected,
                finished: runs.len(),
                stats,
                per_class,
                delta_bacc: None,
                published: ratio.and_then(|ratio| published(method, dataset, ratio)),
                m2m,
                translations: runs.iter().find_map(|r| r.translations.clone().map(|p| (r.key.run_name(), p))),
                selected_on_test: runs.iter().any(|r| r.selected_on_test),
            });
        }
    }
    if let Some(b) = &manifest.baseline {
        // The baseline's bACC per (dataset, ratio) column.
        type Column = (String, Option<f64>);
        let base: Vec<(Column, Option<f64>)> = summaries
            .iter()
            .filter(|s| &s.method == b)
            .map(|s| ((s.dataset.clone(), s.ratio), s.stat(Metric::BalancedAccuracy).map(|x| x.mean)))
            .collect();
        for s in &mut summaries {
            let reference = base.iter().find(|((d, r), _)| *d == s.dataset && *r == s.ratio).and_then(|(_, v)| *v);
            s.delta_bacc = match (s.stat(Metric::BalancedAccuracy), reference) {
                (Some(x), Some(r)) if &s.method != b => Some(x.mean - r),
                _ => None,
            };
        }
    }
    Report {
        suite: manifest.name.clone(),
        baseline: manifest.baseline.clone(),
        methods: manifest.methods.clone(),
        columns,
        summaries,
        missing,
        total_cells: manifest.cells.len(),
        forked: results
            .iter()
            .filter_map(|r| r.forked_from.clone().map(|(source, epoch)| (r.key.run_name(), source, epoch)))
            .collect(),
        provenance: results.iter().map(|r| (r.key.run_name(), r.provenance.clone())).collect(),
        searches: Vec::new(),
    }
}
