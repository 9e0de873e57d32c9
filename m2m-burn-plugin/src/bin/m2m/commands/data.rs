//! `m2m data RECIPE`: what a recipe trains and evaluates on; `m2m data fetch NAME`:
//! download a built-in data set.

use std::path::PathBuf;

use super::{fetch, RecipeArgs};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<DataCommand>,
    /// The RON recipe file (a recipe named `fetch` is `./fetch`).
    #[arg(required = true)]
    recipe: Option<PathBuf>,
    /// Override a field, e.g. `--set dataset.ratio=50` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    overrides: Vec<String>,
}

#[derive(clap::Subcommand)]
enum DataCommand {
    /// Download a built-in data set from its official address, check its published MD5
    /// and install it where recipes look ($M2M_DATA, else m2m's cache folder).
    Fetch(fetch::Args),
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        match (self.command, self.recipe) {
            (Some(DataCommand::Fetch(a)), _) => a.run(),
            (None, Some(recipe)) => show(RecipeArgs { recipe, overrides: self.overrides }),
            (None, None) => anyhow::bail!("m2m data: name a recipe, or `fetch NAME`"),
        }
    }
}

/// Prints what the recipe trains and evaluates on.
fn show(args: RecipeArgs) -> anyhow::Result<()> {
    let recipe = args.load()?;
    let started = std::time::Instant::now();
    let data = recipe.dataset.prepare()?;
    let m = &data.manifest;
    let f = &m.format;
    println!("{} from {} (prepared in {:.2} s)", m.dataset, m.source.display(), started.elapsed().as_secs_f64());
    println!(
        "images {}x{}x{}, {} classes, normalisation mean {:?} std {:?}",
        f.channels,
        f.height,
        f.width,
        f.num_classes(),
        f.mean,
        f.std
    );
    println!(
        "training: {} images, imbalance {:.1}, subset {}",
        m.train_total, m.imbalance_factor, m.subset_fingerprint
    );
    for (k, (name, n)) in f.class_names.iter().zip(&m.train_counts).enumerate() {
        println!("  {k:>3} {name:<24} {n}");
    }
    let on_test = if m.selected_on_test { " (selection on the test set)" } else { "" };
    println!("validation: {} images; test: {} images{on_test}", m.val_size, m.test_size);
    Ok(())
}
