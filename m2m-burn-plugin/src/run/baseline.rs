//! The baseline classifier g: a checkpoint the user names, or an ERM run that `m2m`
//! trains first and caches under `output_dir/_g/`, keyed by everything that shapes it
//! (data set and subset, model, optimiser, schedule, batch size, seed), so every M2m
//! run on the same data reuses one g.

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;

use crate::import::load_any_classifier;
use crate::model::{ModelSpec, Net};
use crate::recipe::{to_ron, BaselineSource, Recipe};
use crate::train::{load_best, train_recipe, Prefixes, ProgressView};

use super::lock::RunLock;
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
    progress: ProgressView,
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
        BaselineSource::Method(m) => anyhow::bail!("m2m.g: Method({m:?}) is resolved by suites only"),
        BaselineSource::TrainErm { seed } => {
            let g_recipe = baseline_recipe(recipe, *seed);
            let run = g_recipe.run_dir();
            tracing::info!("m2m.g: ERM baseline {} (trained once, then reused)", run.display());
            let lock = RunLock::acquire(&run, "m2m.g")?;
            train_recipe::<B>(&g_recipe, device.clone(), progress, &Prefixes::default(), no_baseline)
                .context("m2m.g: training the ERM baseline")?;
            drop(lock);
            load_best(&g_recipe, device).context("m2m.g: loading the ERM baseline")
        }
    }
}
