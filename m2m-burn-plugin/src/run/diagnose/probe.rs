//! A diagnostic for "why does M2m accept so little?": translate class-balanced
//! *training* batches with a recipe's M2m settings and report the acceptance rate and
//! g's confidence per target class. It reads no validation or test data, so settings
//! can be studied without tuning to the test set.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use burn::tensor::backend::AutodiffBackend;
use m2m_core::seed::{stream_rng, SeedStream};
use m2m_core::translation::GenerationStats;

use super::{plan_jobs, translate_jobs, Targets};
use crate::import::load_any_classifier;
use crate::model::Net;
use crate::recipe::{M2mPlan, Recipe};
use crate::train::{ProgressView, TrainLoader};

/// Translates `batches` class-balanced training batches through g (and f, which defaults
/// to g) and returns the generation statistics.
pub fn probe_translation<B: AutodiffBackend>(
    recipe: &Recipe,
    g_path: &Path,
    f_path: Option<&Path>,
    batches: usize,
    device: &B::Device,
) -> anyhow::Result<GenerationStats> {
    let plan = m2m_plan(recipe)?;
    let data = recipe.dataset.prepare().context("preparing the data set")?;
    let spec = recipe.model_spec(&data.manifest.format);
    // g is an ERM classifier: a linear head whatever f's head is.
    let g_spec = crate::model::ModelSpec { cosine_head: false, ..spec.clone() };
    let g = load_any_classifier::<B>(&g_spec, g_path, device)?.0;
    let f = match f_path {
        Some(p) => load_any_classifier::<B>(&spec, p, device)?.0,
        None => g.clone(),
    };
    probe_batches(recipe, plan, data, (&f, &g), batches, device)
}

/// [`probe_translation`] with the recipe's own g (`m2m.g`: a checkpoint, or the cached
/// ERM run, trained first when needed) as both g and f: what a suite's search probes
/// each M2m setting with before training it.
pub fn probe_recipe<B: AutodiffBackend>(
    recipe: &Recipe,
    batches: usize,
    device: &B::Device,
) -> anyhow::Result<GenerationStats> {
    let plan = m2m_plan(recipe)?;
    let data = recipe.dataset.prepare().context("preparing the data set")?;
    let spec = recipe.model_spec(&data.manifest.format);
    let g = crate::run::load_baseline::<B>(recipe, &spec, &plan.g, device, ProgressView::Log)?;
    probe_batches(recipe, plan, data, (&g, &g), batches, device)
}

/// The recipe's M2m section, which a probe needs.
fn m2m_plan(recipe: &Recipe) -> anyhow::Result<&M2mPlan> {
    match &recipe.m2m {
        Some(plan) => Ok(plan),
        None => bail!("{}: the recipe has no `m2m` section", recipe.name),
    }
}

/// Translates `batches` class-balanced training batches of `data` with `recipe`'s M2m
/// settings (`plan`) through `(f, g)`.
fn probe_batches<B: AutodiffBackend>(
    recipe: &Recipe,
    plan: &M2mPlan,
    data: crate::data::PreparedData,
    (f, g): (&Net<B>, &Net<B>),
    batches: usize,
    device: &B::Device,
) -> anyhow::Result<GenerationStats> {
    let counts = data.manifest.train_counts.clone();
    let targets = Targets::Planned {
        counts: counts.clone(),
        beta: plan.translation.beta(),
        selection: plan.translation.seed_selection(),
    };
    let loader = TrainLoader::<B>::new(
        Arc::new(data.train),
        m2m_core::weighting::Deferred::new(m2m_core::sampling::SamplerKind::ClassBalanced, 0),
        recipe.dataset.augmentation,
        recipe.batch_size,
        recipe.seed,
        device.clone(),
    );
    let mut stats = GenerationStats::new(counts.len());
    let mut rng = stream_rng(recipe.seed, 0, SeedStream::Translation);
    for batch in loader.epoch_iter(0).take(batches) {
        let n = batch.labels.len();
        let jobs = plan_jobs(&batch.labels, &targets, counts.len(), &mut rng);
        if jobs.is_empty() {
            stats.record(n, &[], &[], &[]);
            continue;
        }
        let (results, _) = translate_jobs(f, g, &batch.images, &jobs, &plan.translation, true, &mut rng);
        let confidence: Vec<f32> = results.iter().map(|r| r.g_target_prob).collect();
        let accepted: Vec<bool> = results.iter().map(|r| r.accepted()).collect();
        stats.record(n, &jobs, &confidence, &accepted);
    }
    Ok(stats)
}
