//! Reading a suite's finished cells, through their run directories.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use m2m_core::translation::GenerationStats;

use super::summarise::summarize;
use super::{CellResult, Report};
use crate::run_dir::RunDir;
use crate::suite::spec::{CellKey, SuiteManifest};

fn read_manifest(dir: &Path) -> anyhow::Result<SuiteManifest> {
    let path = dir.join("suite.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: no suite here (run `m2m suite` first)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a suite manifest", path.display()))
}

fn read_cell(run: &RunDir, key: &CellKey) -> anyhow::Result<CellResult> {
    let fin = run.read_final()?.with_context(|| format!("{}: not finished (no final metrics)", run.root.display()))?;
    let mut m2m: Option<GenerationStats> = None;
    for s in run.read_records()?.into_iter().filter_map(|r| r.m2m) {
        match m2m.as_mut() {
            None => m2m = Some(s),
            Some(acc) => acc.merge(&s),
        }
    }
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
    for key in &manifest.cells {
        let name = key.run_name();
        let found = dirs.iter().map(|d| RunDir::new(d.join("cells").join(&name))).find(RunDir::is_finished);
        match found {
            Some(run) => results.push(read_cell(&run, key)?),
            None => missing.push(name),
        }
    }
    Ok(summarize(&manifest, &results, missing))
}
