//! `m2m check`: a recipe checked and printed fully resolved.

use m2m_burn_plugin::recipe::to_ron;

use super::RecipeArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    recipe: RecipeArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let recipe = self.recipe.load()?;
        print!("{}", to_ron(&recipe.raw));
        Ok(())
    }
}
