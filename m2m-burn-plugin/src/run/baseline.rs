//! The baseline classifier g: a checkpoint the user names, or an ERM run that `m2m`
//! trains first and caches under `output_dir/_g/`, keyed by everything that shapes it
//! (data set and subset, model, optimiser, schedule, batch size, seed), so every M2m
//! run on the same data reuses one g.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;

use crate::model::{load_any_classifier, ModelSpec, Net};
use crate::recipe::{to_ron, BaselineSource, Recipe};
use crate::train::{load_best, train_recipe, Prefixes, Progress};

use super::no_baseline;

/// The ERM recipe that trains g for `recipe`: the same data, model and schedule, the
/// natural sampler, plain cross-entropy on the linear head (also when f trains with
/// LDAM-DRW, as in the paper's M2m + LDAM-DRW), no M2m, and g's own seed.
pub fn baseline_recipe(recipe: &Recipe, seed: u64) -> Recipe {
    let mut raw = recipe.raw.clone();
    raw.m2m = None;
    raw.start_from = None; // g is trained from scratch
    raw.sampler = None;
    raw.loss = None;
    raw.eval_logit_adjustment = None;
    raw.backend = None; // g runs on f's device; where it was trained does not key the cache
    if let Some(m) = raw.model.as_mut() {
        m.cosine_head = None;
    }
    raw.seed = Some(seed);
    raw.name = Some("g".into());
    raw.output_dir = Some("-".into());
    let key = crate::fingerprint::fnv1a64(to_ron(&raw).as_bytes());
    raw.name = Some(format!("g-erm-{key:016x}"));
    raw.output_dir = Some(recipe.output_dir.join("_g"));
    raw.check().expect("a baseline recipe derived from a checked recipe is valid")
}

/// Loads (training it first when needed) the g of an M2m recipe whose f is `f_spec`.
pub fn load_baseline<B: AutodiffBackend>(
    recipe: &Recipe,
    f_spec: &ModelSpec,
    source: &BaselineSource,
    device: &B::Device,
    progress: Progress,
) -> anyhow::Result<Net<B>> {
    match source {
        // g is an ERM classifier: a linear head whatever f's head is.
        BaselineSource::Checkpoint(path) => {
            let (g, report) = load_any_classifier(&ModelSpec { cosine_head: false, ..f_spec.clone() }, path, device)
                .with_context(|| format!("m2m.g: loading the baseline classifier from {}", path.display()))?;
            if let Some(r) = report {
                tracing::info!("m2m.g: imported {} ({}, {} tensors)", path.display(), r.format, r.mapping.len());
            }
            Ok(g)
        }
        BaselineSource::TrainErm { seed } => {
            let g_recipe = baseline_recipe(recipe, *seed);
            let run = g_recipe.output_dir.join(&g_recipe.name);
            tracing::info!("m2m.g: ERM baseline {} (trained once, then reused)", run.display());
            let lock = GLock::acquire(&run.with_extension("lock"))?;
            train_recipe::<B>(&g_recipe, device.clone(), progress, &Prefixes::default(), no_baseline).context("m2m.g: training the ERM baseline")?;
            drop(lock);
            load_best(&g_recipe, device).context("m2m.g: loading the ERM baseline")
        }
    }
}

/// Only one process trains a cached g at a time (suite shards sharing a folder); the
/// others wait and then find it finished. The lock file holds `host pid`; a lock left by
/// a dead process on this host is taken over.
struct GLock(PathBuf);

impl GLock {
    fn acquire(path: &Path) -> anyhow::Result<GLock> {
        let me = format!("{} {}", host(), std::process::id());
        let mut told = false;
        loop {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(me.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                    return Ok(GLock(path.to_path_buf()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(path).unwrap_or_default();
                    if is_stale(&holder) {
                        tracing::warn!("m2m.g: taking over {} left by a process that is gone ({holder})", path.display());
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    if !told {
                        tracing::info!(
                            "m2m.g: another process ({holder}) is training this g; waiting. If none is, delete {}",
                            path.display()
                        );
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_secs(5));
                }
                Err(e) => return Err(e).with_context(|| format!("creating the lock {}", path.display())),
            }
        }
    }
}

impl Drop for GLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "unknown-host".into())
}

/// A lock written by a process of this host that no longer runs.
fn is_stale(holder: &str) -> bool {
    let mut parts = holder.split_whitespace();
    match (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(h), Some(pid)) => h == host() && !Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
}
