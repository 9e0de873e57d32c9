//! `m2m data`: what a recipe trains and evaluates on.

use super::RecipeArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    recipe: RecipeArgs,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let recipe = self.recipe.load()?;
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
}
