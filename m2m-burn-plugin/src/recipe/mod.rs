//! RON recipes: raw files (with `base:` inheritance and `--set` overrides) that only
//! become a usable [`Recipe`] through `RawRecipe::check` ([`load_recipe`] does it all).

mod check;
mod load;
mod prefix;
mod raw;

pub use check::{check_translation, LossPlan, M2mPlan, OptimizerSpec, Recipe, RecipeError, SamplerPlan, StartFrom};
pub(crate) use load::parse_override;
pub(crate) use load::resolve_raw;
pub use load::{load_recipe, to_ron, LoadError};
pub(crate) use load::{ron_options, ron_pretty};
pub use prefix::shared_epochs;
pub use raw::{
    BaselineSource, Merge, RawDataset, RawImages, RawImbalance, RawLoss, RawM2m, RawModel, RawOptimizer, RawRecipe,
    RawSampler, RawSchedule, RawStartFrom, RawWeighting,
};
