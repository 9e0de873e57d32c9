//! Running recipes: the layer above training. It resolves M2m's g (a checkpoint, or an
//! ERM run trained once and cached), hands it to `train`, and holds the diagnostics that
//! load networks and data the way runs do (`m2m probe`, `m2m translate`). Neither `m2m`
//! nor `train` imports it.

mod baseline;
#[doc(hidden)]
pub mod diagnose;
mod lock;

use burn::tensor::backend::AutodiffBackend;

pub use crate::provenance::{Ending, Session};
pub use crate::train::{Prefixes, ProgressView, RunOutcome};
pub use baseline::baseline_recipe;
pub(crate) use baseline::load_baseline;

pub use lock::lock_holder;
pub(crate) use lock::RunLock;

use crate::model::{ModelSpec, Net};
use crate::recipe::Recipe;
use crate::train::train_recipe;

/// Runs `recipe` on `device`: trains it (resuming an unfinished run of the same recipe),
/// with M2m's g resolved first when the recipe needs one.
pub fn run_recipe<B: AutodiffBackend>(
    recipe: &Recipe,
    device: B::Device,
    progress: ProgressView,
) -> Result<RunOutcome, crate::Error> {
    run_recipe_with::<B>(recipe, device, progress, &Prefixes::default())
}

/// [`run_recipe`] keeping fork points or starting as a fork (see [`Prefixes`]).
pub fn run_recipe_with<B: AutodiffBackend>(
    recipe: &Recipe,
    device: B::Device,
    progress: ProgressView,
    prefixes: &Prefixes,
) -> Result<RunOutcome, crate::Error> {
    let baseline = |spec: &ModelSpec| match &recipe.m2m {
        Some(plan) => load_baseline::<B>(recipe, spec, &plan.g, &device, progress),
        None => no_baseline(spec),
    };
    train_recipe::<B>(recipe, device.clone(), progress, prefixes, baseline).map_err(crate::Error::new)
}

/// For recipes without M2m (training never asks for g then).
fn no_baseline<B: AutodiffBackend>(_: &ModelSpec) -> anyhow::Result<Net<B>> {
    anyhow::bail!("this recipe has no `m2m` section, so it has no baseline classifier g")
}
