//! SVG plots for suite reports, drawn with plotters (no font or system libraries).

use std::path::Path;

use anyhow::{anyhow, Context};
use m2m_core::translation::GenerationStats;
use plotters::prelude::*;

use super::report::{MethodSummary, SearchResult};

/// Turns a plotters error into one that names the file being drawn.
fn plot_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow!("drawing {}: {e}", path.display())
}

type Chart<'b, 'a> = ChartContext<
    'b,
    SVGBackend<'a>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The frame both plots share: a white canvas, a caption, one x position per class
/// (labelled by index) and a y axis from 0 to `y_max`.
fn class_axes<'b, 'a>(
    root: &'b DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    caption: String,
    classes: usize,
    y_max: f64,
    (x_desc, y_desc): (&str, &str),
    path: &Path,
) -> anyhow::Result<Chart<'b, 'a>> {
    let e = plot_err(path);
    root.fill(&WHITE).map_err(&e)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(-0.5f64..(classes as f64 - 0.5), 0f64..y_max)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(classes.min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(&e)?;
    Ok(chart)
}

/// The series' labels in a framed box at `position`.
fn legend<'b, 'a: 'b>(chart: &mut Chart<'b, 'a>, position: SeriesLabelPosition, path: &Path) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err(path))
}

/// Mean test recall per class, one line per method.
pub fn per_class(rows: &[&MethodSummary], title: &str, path: &Path) -> anyhow::Result<()> {
    let e = plot_err(path);
    let classes = rows.iter().map(|r| r.per_class.len()).max().unwrap_or(0);
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
    let caption = format!("Per-class test recall (%), {title}");
    let mut chart = class_axes(&root, caption, classes, 100.0, ("class (0 = largest)", "recall %"), path)?;
    for (i, r) in rows.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> =
            r.per_class.iter().enumerate().filter_map(|(k, v)| v.map(|v| (k as f64, v))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(&e)?
            .label(r.method.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(&e)?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerLeft, path)?;
    root.present().map_err(&e)?;
    drop(chart);
    drop(root);
    write_svg(path, &svg)
}

/// M2m's acceptance rate per target class (accepted / attempted translations).
pub fn acceptance(stats: &GenerationStats, title: &str, path: &Path) -> anyhow::Result<()> {
    let e = plot_err(path);
    let rates: Vec<f64> = stats.acceptance_rate_per_class().iter().map(|r| 100.0 * r.unwrap_or(0.0)).collect();
    let top = rates.iter().copied().fold(0.0, f64::max).max(1.0) * 1.15;
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
    let caption = format!("M2m acceptance rate per target class (%), {title}");
    let axes = ("target class (0 = largest; it is never a target)", "accepted %");
    let mut chart = class_axes(&root, caption, rates.len(), top, axes, path)?;
    chart
        .draw_series(rates.iter().enumerate().map(|(k, &r)| {
            let x = k as f64;
            Rectangle::new([(x - 0.35, 0.0), (x + 0.35, r)], BLUE.mix(0.7).filled())
        }))
        .map_err(&e)?;
    root.present().map_err(&e)?;
    drop(chart);
    drop(root);
    write_svg(path, &svg)
}

/// A search's trials: validation balanced accuracy (%) per epoch, one line per trial as
/// far as it trained, the chosen one drawn thick; the rungs' ends as vertical lines.
pub fn validation_curves(search: &SearchResult, title: &str, path: &Path) -> anyhow::Result<()> {
    let e = plot_err(path);
    let record = &search.record;
    let points: Vec<Vec<(f64, f64)>> = search
        .curves
        .iter()
        .map(|c| {
            c.iter().filter(|(ep, _)| *ep + 1 >= record.shared).map(|&(ep, v)| ((ep + 1) as f64, 100.0 * v)).collect()
        })
        .collect();
    let all = points.iter().flatten();
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &(_, v)| (lo.min(v), hi.max(v)));
    let (lo, hi) = if lo.is_finite() { ((lo - 2.0).max(0.0), (hi + 2.0).min(100.0)) } else { (0.0, 100.0) };
    let last = *record.rung_ends.last().unwrap_or(&1) as f64;
    let first = (record.shared as f64).min(last - 1.0).max(0.0);
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Validation bACC (%) of each trial, {title}"), ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(first..last + 0.2, lo..hi)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("epochs trained")
        .y_desc("validation bACC %")
        .draw()
        .map_err(&e)?;
    for &end in &record.rung_ends {
        let x = end as f64;
        chart.draw_series(LineSeries::new([(x, lo), (x, hi)], BLACK.mix(0.3))).map_err(&e)?;
    }
    for (k, pts) in points.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let width = if record.chosen == Some(k) { 4 } else { 1 };
        let label = format!("t{k}: {}", record.trials[k].setting);
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))
            .map_err(&e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight, path)?;
    root.present().map_err(&e)?;
    drop(chart);
    drop(root);
    write_svg(path, &svg)
}

/// Written whole or not at all: shards sharing a folder may write the same plot at once.
fn write_svg(path: &Path, svg: &str) -> anyhow::Result<()> {
    crate::fs::write_atomic(path, svg.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
