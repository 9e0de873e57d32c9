//! `m2m probe`: how many translations g accepts on a recipe's class-balanced training
//! batches, per target class.

use std::path::PathBuf;

use m2m_burn_plugin::backend::{run_on, BackendChoice, BackendTask};
use m2m_burn_plugin::recipe::Recipe;
use m2m_burn_plugin::run::diagnose::probe_translation;
use m2m_core::translation::GenerationStats;

use super::RecipeArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    recipe: RecipeArgs,
    /// g: a model saved by m2m (path without extension, e.g. runs/x/model-best-val).
    #[arg(long)]
    g: PathBuf,
    /// f (the classifier being trained); defaults to g.
    #[arg(long)]
    f: Option<PathBuf>,
    /// Number of batches to translate.
    #[arg(long, default_value_t = 10)]
    batches: usize,
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N, wgpu:cpu (default: the recipe's `backend`, else cpu).
    #[arg(long)]
    backend: Option<BackendChoice>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let recipe = self.recipe.load()?;
        let backend = self.backend.unwrap_or(recipe.backend);
        let s = run_on(backend, Probe { recipe: &recipe, args: &self })?;
        let t = recipe.m2m.as_ref().map(|m| m.translation.clone()).unwrap_or_default();
        println!(
            "step {} x {} steps, gamma {}, beta {}: accepted {}/{} ({:.2}%), mean g confidence on the target {:.3}",
            t.step_size(),
            t.steps(),
            t.gamma(),
            t.beta(),
            s.total_accepted(),
            s.total_attempts(),
            100.0 * s.acceptance_rate().unwrap_or(0.0),
            s.mean_g_confidence().unwrap_or(f64::NAN)
        );
        let per_class: Vec<String> = s
            .acceptance_rate_per_class()
            .iter()
            .zip(&s.attempts)
            .map(|(r, a)| r.map_or("-".into(), |r| format!("{:.1}% of {a}", 100.0 * r)))
            .collect();
        println!("per target class: {}", per_class.join(", "));
        Ok(())
    }
}

struct Probe<'a> {
    recipe: &'a Recipe,
    args: &'a Args,
}

impl BackendTask for Probe<'_> {
    type Output = GenerationStats;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> anyhow::Result<GenerationStats> {
        let a = self.args;
        probe_translation::<B>(self.recipe, &a.g, a.f.as_deref(), a.batches, &device)
    }
}
