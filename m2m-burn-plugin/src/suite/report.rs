//! `m2m report`: finished cells of one or more suite folders (shards) aggregated per
//! method and dataset/ratio into mean ± std over seeds, the difference to the baseline
//! method, published values where the spec lists them, and plots.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use m2m_core::metrics::ClassificationReport;
use m2m_core::translation::GenerationStats;

use super::published::{published, Published};
use super::spec::{CellKey, SuiteManifest};
use crate::data::DatasetName;
use crate::train::{EpochRecord, FinalMetrics};

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
}

/// Mean and sample standard deviation (n - 1) of a metric over runs, in %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    pub mean: f64,
    /// `None` for a single run.
    pub std: Option<f64>,
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

    fn text(&self) -> String {
        match self.std {
            Some(s) => format!("{:.2} ± {:.2}", self.mean, s),
            None => format!("{:.2}", self.mean),
        }
    }
}

/// The metrics the report tabulates, in table order: (CSV name, heading).
pub const METRICS: [(&str, &str); 8] = [
    ("bacc", "bACC"),
    ("gm", "GM"),
    ("major", "major"),
    ("neutral", "neutral"),
    ("minor", "minor"),
    ("many", "many-shot"),
    ("medium", "medium-shot"),
    ("few", "few-shot"),
];

fn metric(r: &ClassificationReport, name: &str) -> Option<f64> {
    match name {
        "bacc" => Some(r.balanced_accuracy),
        "gm" => Some(r.geometric_mean),
        "major" => r.major,
        "neutral" => r.neutral,
        "minor" => r.minor,
        "many" => r.many_shot,
        "medium" => r.medium_shot,
        "few" => r.few_shot,
        _ => None,
    }
}

/// One method on one dataset/ratio.
#[derive(Debug, Clone)]
pub struct MethodSummary {
    pub method: String,
    pub dataset: DatasetName,
    pub ratio: f64,
    /// Cells the suite has for this method and column, and how many finished.
    pub expected: usize,
    pub finished: usize,
    /// One entry per name in [`METRICS`]; `None` when a finished run lacks the metric.
    pub stats: Vec<Option<Stat>>,
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
    pub fn stat(&self, name: &str) -> Option<Stat> {
        METRICS.iter().position(|(m, _)| *m == name).and_then(|i| self.stats[i])
    }
}

/// Everything `m2m report` writes.
#[derive(Debug, Clone)]
pub struct Report {
    pub suite: String,
    pub baseline: Option<String>,
    pub methods: Vec<String>,
    /// (dataset, ratio) columns in suite order.
    pub columns: Vec<(DatasetName, f64)>,
    pub summaries: Vec<MethodSummary>,
    /// Run names of the cells without a `final.json` in any of the folders.
    pub missing: Vec<String>,
    pub total_cells: usize,
}

impl Report {
    pub fn summary(&self, method: &str, dataset: DatasetName, ratio: f64) -> Option<&MethodSummary> {
        self.summaries.iter().find(|s| s.method == method && s.dataset == dataset && s.ratio == ratio)
    }
}

fn read_manifest(dir: &Path) -> anyhow::Result<SuiteManifest> {
    let path = dir.join("suite.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: no suite here (run `m2m suite` first)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a suite manifest", path.display()))
}

fn read_cell(run: &Path, key: &CellKey) -> anyhow::Result<CellResult> {
    let final_path = run.join("final.json");
    let text = std::fs::read_to_string(&final_path).with_context(|| format!("reading {}", final_path.display()))?;
    let fin: FinalMetrics = serde_json::from_str(&text).with_context(|| format!("{}: corrupt final.json", final_path.display()))?;
    let jsonl = run.join("metrics.jsonl");
    let mut m2m: Option<GenerationStats> = None;
    for (i, line) in std::fs::read_to_string(&jsonl).with_context(|| format!("reading {}", jsonl.display()))?.lines().enumerate() {
        let r: EpochRecord = serde_json::from_str(line).with_context(|| format!("{}: line {} is corrupt", jsonl.display(), i + 1))?;
        if let Some(s) = r.m2m {
            match m2m.as_mut() {
                None => m2m = Some(s),
                Some(acc) => acc.merge(&s),
            }
        }
    }
    let translations = Some(run.join(crate::train::TRANSLATIONS_PNG)).filter(|p| p.is_file());
    Ok(CellResult { key: key.clone(), test: fin.best_val.test, selected_on_test: fin.selected_on_test, m2m, translations })
}

/// Reads the finished cells of a suite from one folder or from the folders of its shards
/// (all must hold the same suite).
pub fn collect(dirs: &[PathBuf]) -> anyhow::Result<Report> {
    let Some(first) = dirs.first() else { bail!("name at least one suite folder") };
    let manifest = read_manifest(first)?;
    for d in &dirs[1..] {
        if read_manifest(d)? != manifest {
            bail!("{} holds a different suite than {} (compare their suite.json)", d.display(), first.display());
        }
    }
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for key in &manifest.cells {
        let name = key.run_name();
        let found = dirs.iter().map(|d| d.join("cells").join(&name)).find(|run| run.join("final.json").is_file());
        match found {
            Some(run) => results.push(read_cell(&run, key)?),
            None => missing.push(name),
        }
    }
    Ok(summarize(&manifest, &results, missing))
}

/// Aggregates cell results per method and column (public for tests of the formulas).
pub fn summarize(manifest: &SuiteManifest, results: &[CellResult], missing: Vec<String>) -> Report {
    let mut columns: Vec<(DatasetName, f64)> = Vec::new();
    for k in &manifest.cells {
        if !columns.contains(&(k.dataset, k.ratio)) {
            columns.push((k.dataset, k.ratio));
        }
    }
    let mut summaries = Vec::new();
    for &(dataset, ratio) in &columns {
        for method in &manifest.methods {
            let in_cell = |k: &CellKey| &k.method == method && k.dataset == dataset && k.ratio == ratio;
            let expected = manifest.cells.iter().filter(|k| in_cell(k)).count();
            let runs: Vec<&CellResult> = results.iter().filter(|r| in_cell(&r.key)).collect();
            let stats = METRICS
                .iter()
                .map(|(name, _)| {
                    let values: Option<Vec<f64>> = runs.iter().map(|r| metric(&r.test, name)).collect();
                    values.and_then(|v| Stat::of(&v))
                })
                .collect();
            let classes = runs.first().map_or(0, |r| r.test.per_class_recall.len());
            let per_class = (0..classes)
                .map(|k| {
                    let v: Option<Vec<f64>> = runs.iter().map(|r| r.test.per_class_recall.get(k).copied().flatten()).collect();
                    v.and_then(|v| Stat::of(&v)).map(|s| s.mean)
                })
                .collect();
            let m2m = runs.iter().filter_map(|r| r.m2m.clone()).reduce(|mut a, b| {
                a.merge(&b);
                a
            });
            summaries.push(MethodSummary {
                method: method.clone(),
                dataset,
                ratio,
                expected,
                finished: runs.len(),
                stats,
                per_class,
                delta_bacc: None,
                published: published(method, dataset, ratio),
                m2m,
                translations: runs.iter().find_map(|r| r.translations.clone().map(|p| (r.key.run_name(), p))),
                selected_on_test: runs.iter().any(|r| r.selected_on_test),
            });
        }
    }
    if let Some(b) = &manifest.baseline {
        let base: Vec<((DatasetName, f64), Option<f64>)> = summaries
            .iter()
            .filter(|s| &s.method == b)
            .map(|s| ((s.dataset, s.ratio), s.stat("bacc").map(|x| x.mean)))
            .collect();
        for s in &mut summaries {
            let reference = base.iter().find(|(c, _)| *c == (s.dataset, s.ratio)).and_then(|(_, v)| *v);
            s.delta_bacc = match (s.stat("bacc"), reference) {
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
    }
}

fn column_title(dataset: DatasetName, ratio: f64) -> String {
    format!("{dataset:?} ρ={ratio}")
}

fn slug(dataset: DatasetName, ratio: f64) -> String {
    format!("{dataset:?}-r{ratio}")
}

/// The balanced-accuracy table (Markdown): one row per method, per dataset/ratio the
/// mean ± std, finished/expected runs, Δ to the baseline and the published value.
pub fn balanced_accuracy_table(r: &Report) -> String {
    let mut md = String::from("| method |");
    for &(d, ratio) in &r.columns {
        let delta = r.baseline.as_ref().map_or(String::new(), |b| format!(" Δ vs {b} |"));
        md.push_str(&format!(" {} | n |{delta} published |", column_title(d, ratio)));
    }
    md.push_str("\n|---|");
    for _ in &r.columns {
        md.push_str(if r.baseline.is_some() { "---:|---:|---:|---|" } else { "---:|---:|---|" });
    }
    md.push('\n');
    for m in &r.methods {
        md.push_str(&format!("| {m} |"));
        for &(d, ratio) in &r.columns {
            let s = r.summary(m, d, ratio).expect("every method has every column");
            let bacc = s.stat("bacc").map_or("–".into(), |x| x.text());
            md.push_str(&format!(" {bacc} | {}/{} |", s.finished, s.expected));
            if r.baseline.is_some() {
                md.push_str(&format!(" {} |", s.delta_bacc.map_or("–".into(), |d| format!("{d:+.2}"))));
            }
            md.push_str(&format!(
                " {} |",
                s.published.map_or("–".into(), |p| format!("{:.2} (published: {})", p.balanced_accuracy, p.source))
            ));
        }
        md.push('\n');
    }
    md
}

/// The report as Markdown; `plots` are paths relative to the Markdown file.
pub fn markdown(r: &Report, plots: &[(String, String)]) -> String {
    let mut md = format!("# Suite `{}`\n\n", r.suite);
    md.push_str(&format!("{} of {} cells finished.", r.total_cells - r.missing.len(), r.total_cells));
    if !r.missing.is_empty() {
        md.push_str(&format!(" Missing: {}.", r.missing.join(", ")));
    }
    md.push_str(
        "\n\nTest metrics (%) at each run's best-validation epoch, mean ± sample std over runs (seeds and data seeds); \
         `n` counts finished runs. Published values are quoted from papers, not measured here.\n",
    );
    if r.summaries.iter().any(|s| s.selected_on_test) {
        md.push_str("\n**Note:** some runs selected their epoch on the test set (no validation split).\n");
    }
    md.push_str("\n## Balanced accuracy\n\n");
    md.push_str(&balanced_accuracy_table(r));
    for &(d, ratio) in &r.columns {
        md.push_str(&format!("\n## All metrics, {}\n\n| method |", column_title(d, ratio)));
        for (_, heading) in METRICS {
            md.push_str(&format!(" {heading} |"));
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(METRICS.len()));
        md.push('\n');
        for m in &r.methods {
            let s = r.summary(m, d, ratio).expect("every method has every column");
            md.push_str(&format!("| {m} |"));
            for st in &s.stats {
                md.push_str(&format!(" {} |", st.map_or("–".into(), |x| x.text())));
            }
            md.push('\n');
        }
        for s in r.summaries.iter().filter(|s| s.dataset == d && s.ratio == ratio) {
            if let Some(g) = &s.m2m {
                md.push_str(&format!(
                    "\n{} generation: {} of {} translations accepted ({:.2}%), mean g confidence on the target {}.\n",
                    s.method,
                    g.total_accepted(),
                    g.total_attempts(),
                    100.0 * g.acceptance_rate().unwrap_or(0.0),
                    g.mean_g_confidence().map_or("–".into(), |c| format!("{c:.3}"))
                ));
            }
        }
    }
    if !plots.is_empty() {
        md.push_str("\n## Plots\n\n");
        for (title, path) in plots {
            md.push_str(&format!("![{title}]({path})\n\n"));
        }
    }
    md.push_str(
        "\nMajor / neutral / minor: classes in the first, middle and last third by index (the M2m code's groups). \
         Many / medium / few-shot: more than 100, 20 to 100, fewer than 20 training images.\n",
    );
    md
}

/// The report as CSV, one row per method, column and metric (per-class recalls as
/// `recall_K`), values in %.
pub fn csv(r: &Report) -> String {
    let mut out = String::from("suite,method,dataset,ratio,metric,mean,std,n,expected,delta_vs_baseline,published,published_source\n");
    for s in &r.summaries {
        let mut rows: Vec<(String, Option<Stat>)> = METRICS.iter().map(|(name, _)| (name.to_string(), s.stat(name))).collect();
        rows.extend(s.per_class.iter().enumerate().map(|(k, v)| (format!("recall_{k}"), v.map(|mean| Stat { mean, std: None, n: s.finished }))));
        for (name, st) in rows {
            let is_bacc = name == "bacc";
            out.push_str(&format!(
                "{},{},{:?},{},{},{},{},{},{},{},{},{}\n",
                r.suite,
                s.method,
                s.dataset,
                s.ratio,
                name,
                st.map_or(String::new(), |x| format!("{:.4}", x.mean)),
                st.and_then(|x| x.std).map_or(String::new(), |x| format!("{x:.4}")),
                s.finished,
                s.expected,
                if is_bacc { s.delta_bacc.map_or(String::new(), |d| format!("{d:.4}")) } else { String::new() },
                if is_bacc { s.published.map_or(String::new(), |p| format!("{:.2}", p.balanced_accuracy)) } else { String::new() },
                if is_bacc { s.published.map_or(String::new(), |p| format!("\"{}\"", p.source)) } else { String::new() },
            ));
        }
    }
    out
}

/// Writes `report.md`, `report.csv` and `plots/*.svg` into `out` (atomically, file by
/// file). Returns the Markdown path.
pub fn write_report(r: &Report, out: &Path) -> anyhow::Result<PathBuf> {
    let plot_dir = out.join("plots");
    std::fs::create_dir_all(&plot_dir).with_context(|| format!("creating {}", plot_dir.display()))?;
    let mut plots = Vec::new();
    for &(d, ratio) in &r.columns {
        let rows: Vec<&MethodSummary> = r.summaries.iter().filter(|s| s.dataset == d && s.ratio == ratio && !s.per_class.is_empty()).collect();
        if !rows.is_empty() {
            let file = format!("per-class-{}.svg", slug(d, ratio));
            super::plot::per_class(&rows, &column_title(d, ratio), &plot_dir.join(&file))?;
            plots.push((format!("Per-class test recall, {}", column_title(d, ratio)), format!("plots/{file}")));
        }
        for s in r.summaries.iter().filter(|s| s.dataset == d && s.ratio == ratio) {
            if let Some(g) = &s.m2m {
                let file = format!("acceptance-{}-{}.svg", s.method, slug(d, ratio));
                super::plot::acceptance(g, &format!("{} on {}", s.method, column_title(d, ratio)), &plot_dir.join(&file))?;
                plots.push((format!("{} acceptance rate per target class, {}", s.method, column_title(d, ratio)), format!("plots/{file}")));
            }
        }
    }
    // Copied next to the report, so that its links hold for shards merged from elsewhere.
    for s in &r.summaries {
        if let Some((run, src)) = &s.translations {
            let file = format!("translations-{run}.png");
            std::fs::copy(src, plot_dir.join(&file)).with_context(|| format!("copying {}", src.display()))?;
            plots.push((format!("{}: accepted translations (seed, translation, difference x10) of {run}", s.method), format!("plots/{file}")));
        }
    }
    let md_path = out.join("report.md");
    crate::fs::write_atomic(&out.join("report.csv"), csv(r).as_bytes()).with_context(|| format!("writing {}", out.join("report.csv").display()))?;
    crate::fs::write_atomic(&md_path, markdown(r, &plots).as_bytes()).with_context(|| format!("writing {}", md_path.display()))?;
    Ok(md_path)
}
