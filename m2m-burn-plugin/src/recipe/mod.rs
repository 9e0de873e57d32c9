//! RON recipes: raw files (with `base:` inheritance and `--set` overrides) that only
//! become a usable [`Recipe`] through [`RawRecipe::check`].

mod check;
mod load;
mod prefix;
mod raw;

pub use check::LossPlan;
pub use check::M2mPlan;
pub use check::OptimizerSpec;
pub use check::RecipeError;
pub use check::SamplerPlan;
pub use check::StartFrom;
pub use check::{check_translation, Recipe};
pub(crate) use load::resolve_raw;
pub use load::{load_recipe, to_ron, LoadError};
pub(crate) use load::{ron_options, ron_pretty};
pub use prefix::shared_epochs;
pub use raw::{BaselineSource, Merge, RawM2m};
pub(crate) use raw::{RawDataset, RawImages, RawImbalance, RawRecipe};
