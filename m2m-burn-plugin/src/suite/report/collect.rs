//! Reading a suite's finished cells, through their run directories.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use m2m_core::translation::GenerationStats;

use super::summarise::summarize;
use super::{CellResult, Report, SearchResult};
use crate::run_dir::{EpochRecord, RunDir};
use crate::suite::search_run::{read_record, record_path};
use crate::suite::spec::{CellKey, SuiteManifest};

fn read_manifest(dir: &Path) -> anyhow::Result<SuiteManifest> {
    let path = dir.join("suite.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: no suite here (run `m2m suite` first)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a suite manifest", path.display()))
}

/// M2m's generation statistics summed over the records of epochs `from` and later;
/// `None` when none of them has any.
fn merged_m2m(records: &[EpochRecord], from: usize) -> Option<GenerationStats> {
    records.iter().filter(|r| r.epoch >= from).filter_map(|r| r.m2m.clone()).reduce(|mut acc, s| {
        acc.merge(&s);
        acc
    })
}

fn read_cell(run: &RunDir, key: &CellKey) -> anyhow::Result<CellResult> {
    let fin = run.read_final()?.with_context(|| format!("{}: not finished (no final metrics)", run.root.display()))?;
    let m2m = merged_m2m(&run.read_records()?, 0);
    let translations = Some(run.translations_path()).filter(|p| p.is_file());
    let forked_from = run.read_fork()?.map(|f| {
        (
            f.source.file_name().map_or_else(|| f.source.display().to_string(), |n| n.to_string_lossy().into_owned()),
            f.epoch,
        )
    });
    Ok(CellResult {
        key: key.clone(),
        test: fin.best_val.test,
        selected_on_test: fin.selected_on_test,
        m2m,
        translations,
        forked_from,
        imbalance_factor: run.read_imbalance_factor()?,
        provenance: run.read_provenance()?,
    })
}

/// Reads the finished cells of a suite from one folder or from the folders of its shards
/// (all must hold the same suite).
pub fn collect(dirs: &[PathBuf]) -> Result<Report, crate::Error> {
    read_cells(dirs).map_err(crate::Error::new)
}

/// [`collect`]'s steps.
fn read_cells(dirs: &[PathBuf]) -> anyhow::Result<Report> {
    let Some(first) = dirs.first() else { bail!("name at least one suite folder") };
    let manifest = read_manifest(first)?;
    for d in &dirs[1..] {
        if read_manifest(d)? != manifest {
            bail!("{} holds a different suite than {} (compare their suite.json)", d.display(), first.display());
        }
    }
    let mut results = Vec::new();
    let mut missing = Vec::new();
    let mut searches = Vec::new();
    for key in &manifest.cells {
        let name = key.run_name();
        let found = if manifest.searched.contains(&key.method) {
            let (search, chosen) = find_search(dirs, key)?.unzip();
            searches.extend(search);
            chosen.flatten()
        } else {
            dirs.iter().map(|d| RunDir::new(d.join("cells").join(&name))).find(RunDir::is_finished)
        };
        match found {
            Some(run) => results.push(read_cell(&run, key)?),
            None => missing.push(name),
        }
    }
    let mut report = summarize(&manifest, &results, missing);
    report.searches = searches;
    Ok(report)
}

/// The search that stands at report key `key`, from the first folder whose record has
/// chosen a trial (else the first with a record), with the chosen trial's run when it
/// finished.
fn find_search(dirs: &[PathBuf], key: &CellKey) -> anyhow::Result<Option<(SearchResult, Option<RunDir>)>> {
    let mut found: Option<(SearchResult, Option<RunDir>)> = None;
    for d in dirs {
        let Some(record) = read_record(&record_path(d, key))? else { continue };
        let cells = d.join("cells");
        let (mut curves, mut translations) = (Vec::new(), Vec::new());
        for t in &record.trials {
            let records = RunDir::new(cells.join(&t.run)).read_records().unwrap_or_default();
            curves.push(records.iter().map(|r| (r.epoch, r.val.balanced_accuracy)).collect());
            translations.push(merged_m2m(&records, record.shared));
        }
        let chosen = record.chosen.map(|c| RunDir::new(cells.join(&record.trials[c].run))).filter(RunDir::is_finished);
        let done = chosen.is_some();
        if found.is_none() || done {
            found = Some((SearchResult { record, curves, translations }, chosen));
        }
        if done {
            break;
        }
    }
    Ok(found)
}
