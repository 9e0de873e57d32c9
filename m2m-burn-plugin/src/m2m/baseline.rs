//! The baseline classifier g: a checkpoint the user names, or an ERM run that `m2m`
//! trains first and caches under `output_dir/_g/`, keyed by everything that shapes it
//! (data set and subset, model, optimiser, schedule, batch size, seed), so every M2m
//! run on the same data reuses one g.

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;

use crate::model::{load_classifier, ModelSpec, Net};
use crate::recipe::{to_ron, BaselineSource, Recipe};
use crate::train::{load_best, train_recipe, Progress};

/// The ERM recipe that trains g for `recipe`: the same data, model and schedule, the
/// natural sampler, plain cross-entropy on the linear head (also when f trains with
/// LDAM-DRW, as in the paper's M2m + LDAM-DRW), no M2m, and g's own seed.
pub fn baseline_recipe(recipe: &Recipe, seed: u64) -> Recipe {
    let mut raw = recipe.raw.clone();
    raw.m2m = None;
    raw.sampler = None;
    raw.loss = None;
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

/// Loads (training it first when needed) the g of an M2m recipe.
pub fn load_baseline<B: AutodiffBackend>(recipe: &Recipe, source: &BaselineSource, device: &B::Device, progress: Progress) -> anyhow::Result<Net<B>> {
    match source {
        // g is an ERM classifier: a linear head whatever f's head is.
        BaselineSource::Checkpoint(path) => load_classifier(&ModelSpec { cosine_head: false, ..recipe.model_spec() }, path, device)
            .with_context(|| format!("m2m.g: loading the baseline classifier from {}", path.display())),
        BaselineSource::TrainErm { seed } => {
            let g_recipe = baseline_recipe(recipe, *seed);
            tracing::info!("m2m.g: ERM baseline {} (trained once, then reused)", g_recipe.output_dir.join(&g_recipe.name).display());
            train_recipe::<B>(&g_recipe, device.clone(), progress).context("m2m.g: training the ERM baseline")?;
            load_best(&g_recipe, device).context("m2m.g: loading the ERM baseline")
        }
    }
}
