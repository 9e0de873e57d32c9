//! Writing a report: Markdown tables, CSV rows, plots and the translation pictures.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::metric::{Metric, Stat};
use super::{MethodSummary, Report};
use crate::m2m::acceptance::low_acceptance;

/// `FashionMnist ρ=100`; a data set with its own counts shows the ratio measured on it.
fn column_title(r: &Report, dataset: &str, ratio: Option<f64>) -> String {
    match (ratio, r.measured_ratio(dataset, ratio)) {
        (Some(ratio), _) => format!("{dataset} ρ={ratio}"),
        (None, Some(measured)) => format!("{dataset} as is (ρ={measured:.1})"),
        (None, None) => format!("{dataset} as is"),
    }
}

fn slug(dataset: &str, ratio: Option<f64>) -> String {
    match ratio {
        Some(ratio) => format!("{dataset}-r{ratio}"),
        None => format!("{dataset}-as-is"),
    }
}

/// M2m summaries whose cells accepted too few translations to differ from DRS, with the
/// sentence that says so ([`low_acceptance`]).
fn low_acceptance_notes(r: &Report) -> Vec<(&MethodSummary, String)> {
    r.summaries.iter().filter_map(|s| Some((s, low_acceptance(s.m2m.as_ref()?)?))).collect()
}

/// The balanced-accuracy table (Markdown): one row per method, per dataset/ratio the
/// mean ± std, finished/expected runs, Δ to the baseline and the published value.
pub fn balanced_accuracy_table(r: &Report) -> String {
    let mut md = String::from("| method |");
    for (d, ratio) in r.columns.iter().map(|(d, r)| (d.as_str(), *r)) {
        let delta = r.baseline.as_ref().map_or(String::new(), |b| format!(" Δ vs {b} |"));
        md.push_str(&format!(" {} | n |{delta} published |", column_title(r, d, ratio)));
    }
    let notes = low_acceptance_notes(r);
    md.push_str("\n|---|");
    for _ in &r.columns {
        md.push_str(if r.baseline.is_some() { "---:|---:|---:|---|" } else { "---:|---:|---|" });
    }
    md.push('\n');
    for m in &r.methods {
        let flagged = notes.iter().any(|(s, _)| &s.method == m);
        let searched = r.searches.iter().any(|s| &s.record.key.method == m);
        md.push_str(&format!(
            "| {m}{}{} |",
            if searched { " (chosen on validation)" } else { "" },
            if flagged { " ⚠" } else { "" }
        ));
        for (d, ratio) in r.columns.iter().map(|(d, r)| (d.as_str(), *r)) {
            let s = r.summary(m, d, ratio).expect("every method has every column");
            let bacc = s.stat(Metric::BalancedAccuracy).map_or("–".into(), |x| x.text());
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
    for (s, note) in notes {
        md.push_str(&format!("\n⚠ {} on {}: {note}.\n", s.method, column_title(r, &s.dataset, s.ratio)));
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
    if !r.forked.is_empty() {
        md.push_str(&format!(
            "\n{} cells started as exact forks of another cell's first epochs (the shared prefix trained once):\n\n",
            r.forked.len()
        ));
        for (cell, source, epoch) in &r.forked {
            md.push_str(&format!("- `{cell}` from `{source}` after epoch {epoch}\n"));
        }
    }
    if r.summaries.iter().any(|s| s.selected_on_test) {
        md.push_str("\n**Note:** some runs selected their epoch on the test set (no validation split).\n");
    }
    md.push_str("\n## Balanced accuracy\n\n");
    md.push_str(&balanced_accuracy_table(r));
    md.push_str(&super::searches::section(r));
    for (d, ratio) in r.columns.iter().map(|(d, r)| (d.as_str(), *r)) {
        md.push_str(&format!("\n## All metrics, {}\n\n| method |", column_title(r, d, ratio)));
        for m in Metric::ALL {
            md.push_str(&format!(" {} |", m.heading()));
        }
        md.push_str("\n|---|");
        md.push_str(&"---:|".repeat(Metric::ALL.len()));
        md.push('\n');
        for m in &r.methods {
            let s = r.summary(m, d, ratio).expect("every method has every column");
            md.push_str(&format!("| {m} |"));
            for (_, st) in s.stats.iter() {
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
    md.push_str(&provenance(r));
    if !plots.is_empty() {
        md.push_str("\n## Plots\n\n");
        for (title, path) in plots {
            md.push_str(&format!("![{title}]({path})\n\n"));
        }
    }
    md.push_str(
        "\nMajor / neutral / minor: the largest, middle and smallest third of the classes by training images (by \
         index on the generated long tails, as in the M2m code). \
         Many / medium / few-shot: more than 100, 20 to 100, fewer than 20 training images.\n",
    );
    md
}

/// The report's section on where each cell's numbers came from: a line per process that
/// trained it (m2m and burn versions, backend, device, hardware, host, epochs and dates).
fn provenance(r: &Report) -> String {
    let mut md = String::from(
        "\n## Where the numbers came from\n\nEach finished cell, one line per process that trained it \
         (a resumed cell has several; a fork's first epochs are its source's).\n\n",
    );
    for (cell, sessions) in &r.provenance {
        match sessions.as_slice() {
            [] => md.push_str(&format!("- `{cell}`: not recorded (trained by an m2m older than this record)\n")),
            [one] => md.push_str(&format!("- `{cell}`: {}\n", one.summary())),
            many => {
                md.push_str(&format!("- `{cell}`:\n"));
                for s in many {
                    md.push_str(&format!("  - {}\n", s.summary()));
                }
            }
        }
    }
    md
}

/// The report as CSV, one row per method, column and metric (per-class recalls as
/// `recall_K`), values in %. Fields are quoted where they hold a comma, a quote or a line
/// break (RFC 4180, by the `csv` crate).
pub fn csv(r: &Report) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "suite",
        "method",
        "dataset",
        "ratio",
        "metric",
        "mean",
        "std",
        "n",
        "expected",
        "delta_vs_baseline",
        "published",
        "published_source",
    ])?;
    for s in &r.summaries {
        let mut rows: Vec<(String, Option<Stat>)> =
            s.stats.iter().map(|(m, st)| (m.csv_name().to_string(), st)).collect();
        rows.extend(
            s.per_class
                .iter()
                .enumerate()
                .map(|(k, v)| (format!("recall_{k}"), v.map(|mean| Stat { mean, std: None, n: s.finished }))),
        );
        for (name, st) in rows {
            w.write_record(csv_row(r, s, &name, st))?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8"))
}

/// One `report.csv` row: `s`'s statistic `st` of metric `name`; the baseline's difference
/// and the published value go on the bACC row only.
fn csv_row(r: &Report, s: &MethodSummary, name: &str, st: Option<Stat>) -> [String; 12] {
    let bacc = name == "bacc";
    [
        r.suite.clone(),
        s.method.clone(),
        s.dataset.clone(),
        s.ratio.or(s.measured_ratio).map_or(String::new(), |r| r.to_string()),
        name.to_string(),
        st.map_or(String::new(), |x| format!("{:.4}", x.mean)),
        st.and_then(|x| x.std).map_or(String::new(), |x| format!("{x:.4}")),
        s.finished.to_string(),
        s.expected.to_string(),
        s.delta_bacc.filter(|_| bacc).map_or(String::new(), |d| format!("{d:.4}")),
        s.published.filter(|_| bacc).map_or(String::new(), |p| format!("{:.2}", p.balanced_accuracy)),
        s.published.filter(|_| bacc).map_or(String::new(), |p| p.source.to_string()),
    ]
}

/// Writes `report.md`, `report.csv` and `plots/*.svg` into `out` (atomically, file by
/// file). Returns the Markdown path.
pub fn write_report(r: &Report, out: &Path) -> Result<PathBuf, crate::Error> {
    write_files(r, out).map_err(crate::Error::new)
}

/// [`write_report`]'s steps.
fn write_files(r: &Report, out: &Path) -> anyhow::Result<PathBuf> {
    let plot_dir = out.join("plots");
    std::fs::create_dir_all(&plot_dir).with_context(|| format!("creating {}", plot_dir.display()))?;
    let mut plots = Vec::new();
    for (d, ratio) in r.columns.iter().map(|(d, r)| (d.as_str(), *r)) {
        let rows: Vec<&MethodSummary> =
            r.summaries.iter().filter(|s| s.dataset == d && s.ratio == ratio && !s.per_class.is_empty()).collect();
        if !rows.is_empty() {
            let title = column_title(r, d, ratio);
            let file = format!("per-class-{}.svg", slug(d, ratio));
            crate::suite::plot::per_class(&rows, &title, &plot_dir.join(&file))?;
            plots.push((format!("Per-class test recall, {title}"), format!("plots/{file}")));
        }
        for s in r.summaries.iter().filter(|s| s.dataset == d && s.ratio == ratio) {
            if let Some(g) = &s.m2m {
                let file = format!("acceptance-{}-{}.svg", s.method, slug(d, ratio));
                let title = column_title(r, d, ratio);
                crate::suite::plot::acceptance(g, &format!("{} on {title}", s.method), &plot_dir.join(&file))?;
                plots
                    .push((format!("{} acceptance rate per target class, {title}", s.method), format!("plots/{file}")));
            }
        }
    }
    for s in &r.searches {
        let name = s.record.key.run_name();
        let file = format!("search-{name}.svg");
        crate::suite::plot::validation_curves(s, &name, &plot_dir.join(&file))?;
        plots.push((format!("Validation curves of the trials of search {name}"), format!("plots/{file}")));
    }
    // Copied next to the report, so that its links hold for shards merged from elsewhere.
    for s in &r.summaries {
        if let Some((run, src)) = &s.translations {
            let file = format!("translations-{run}.png");
            let png = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
            crate::fs::write_atomic(&plot_dir.join(&file), &png)
                .with_context(|| format!("writing {}", plot_dir.join(&file).display()))?;
            plots.push((
                format!("{}: accepted translations (seed, translation, difference x10) of {run}", s.method),
                format!("plots/{file}"),
            ));
        }
    }
    let md_path = out.join("report.md");
    let table = csv(r).with_context(|| format!("writing {} in memory", out.join("report.csv").display()))?;
    crate::fs::write_atomic(&out.join("report.csv"), table.as_bytes())
        .with_context(|| format!("writing {}", out.join("report.csv").display()))?;
    crate::fs::write_atomic(&md_path, markdown(r, &plots).as_bytes())
        .with_context(|| format!("writing {}", md_path.display()))?;
    Ok(md_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::published::Published;

    /// Names with commas and quotes survive `report.csv`: a CSV reader gets them back.
    #[test]
    fn report_csv_reads_back_with_commas_and_quotes_in_names() {
        let suite = r#"lt "quick", again"#;
        let methods = [r#"ERM, "plain""#, "M2m"];
        let source = r#"a paper, Table "2""#;
        let summary = |method: &str| MethodSummary {
            method: method.to_string(),
            dataset: "Fashion,MNIST".into(),
            ratio: Some(100.0),
            measured_ratio: None,
            expected: 2,
            finished: 1,
            stats: Default::default(),
            per_class: vec![Some(50.0), None],
            delta_bacc: Some(1.5),
            published: Some(Published { balanced_accuracy: 70.0, source }),
            m2m: None,
            translations: None,
            selected_on_test: false,
        };
        let report = Report {
            suite: suite.into(),
            baseline: Some(methods[0].into()),
            methods: methods.map(String::from).to_vec(),
            columns: vec![("Fashion,MNIST".into(), Some(100.0))],
            summaries: methods.iter().map(|m| summary(m)).collect(),
            missing: Vec::new(),
            total_cells: 4,
            forked: Vec::new(),
            provenance: Vec::new(),
            searches: Vec::new(),
        };
        let text = csv(&report).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap().len(), 12);
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        // Per method: 8 metrics and 2 per-class recalls.
        assert_eq!(rows.len(), 2 * 10, "{text}");
        for (row, method) in rows.iter().zip(methods.iter().flat_map(|m| [m; 10])) {
            assert_eq!((&row[0], &row[1], &row[2]), (suite, *method, "Fashion,MNIST"), "{text}");
            let bacc = &row[4] == "bacc";
            assert_eq!(&row[11], if bacc { source } else { "" }, "{text}");
            assert_eq!(&row[9], if bacc { "1.5000" } else { "" }, "{text}");
        }
        assert_eq!((&rows[8][4], &rows[8][5], &rows[8][7]), ("recall_0", "50.0000", "1"));
    }
}
