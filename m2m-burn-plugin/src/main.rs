//! The `m2m` command line: check and train RON recipes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use m2m_burn_plugin::backend::BackendChoice;
use m2m_burn_plugin::recipe::{load_recipe, to_ron};
use m2m_burn_plugin::train::{train_recipe, Progress};

#[derive(Parser)]
#[command(name = "m2m", version, about = "M2m and imbalanced-classification baselines on burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct RecipeArgs {
    /// The RON recipe file.
    recipe: PathBuf,
    /// Override a field, e.g. `--set dataset.ratio=50` or `--set schedule.epochs=3` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a recipe and print it fully resolved (bases and overrides applied).
    Check(RecipeArgs),
    /// Resume (or finish) the run in RUN_DIR from its own resolved recipe.
    Resume {
        run_dir: PathBuf,
        /// cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        backend: BackendChoice,
        /// Plain log lines even on a terminal (no dashboard).
        #[arg(long)]
        no_dashboard: bool,
    },
    /// Translate class-balanced training batches with the recipe's M2m settings and report
    /// acceptance and g's confidence per class (training data only).
    Probe {
        #[command(flatten)]
        args: RecipeArgs,
        /// g: a model saved by m2m (path without extension, e.g. runs/x/model-best-val).
        #[arg(long)]
        g: PathBuf,
        /// f (the classifier being trained); defaults to g.
        #[arg(long)]
        f: Option<PathBuf>,
        /// Number of batches to translate.
        #[arg(long, default_value_t = 10)]
        batches: usize,
    },
    /// Train a recipe; an interrupted run resumes from its run directory.
    Train {
        #[command(flatten)]
        args: RecipeArgs,
        /// cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        backend: BackendChoice,
        /// Plain log lines even on a terminal (no dashboard).
        #[arg(long)]
        no_dashboard: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // burn's dashboard owns the terminal while it runs: log lines would tear it, so only
    // warnings go to stderr then (the epoch results are in the run directory anyway).
    let dashboard = std::io::stdout().is_terminal()
        && matches!(cli.command, Command::Train { no_dashboard: false, .. } | Command::Resume { no_dashboard: false, .. });
    let default_level = if dashboard { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Check(a) => {
            let recipe = load_recipe(&a.recipe, &a.overrides)?;
            print!("{}", to_ron(&recipe.raw));
            Ok(())
        }
        Command::Probe { args, g, f, batches } => {
            let recipe = load_recipe(&args.recipe, &args.overrides)?;
            let device = Default::default();
            let s = m2m_burn_plugin::m2m::probe_translation::<m2m_burn_plugin::backend::Cpu>(&recipe, &g, f.as_deref(), batches, &device)?;
            let t = recipe.m2m.as_ref().map(|m| m.translation.clone()).unwrap_or_default();
            println!(
                "step {} x {} steps, gamma {}, beta {}: accepted {}/{} ({:.2}%), mean g confidence on the target {:.3}",
                t.step_size,
                t.steps,
                t.gamma,
                t.beta,
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
        Command::Resume { run_dir, backend, no_dashboard } => {
            let path = run_dir.join("recipe.resolved.ron");
            let recipe = load_recipe(&path, &[])?;
            let expected = recipe.output_dir.join(&recipe.name);
            if std::fs::canonicalize(&expected).ok() != std::fs::canonicalize(&run_dir).ok() {
                anyhow::bail!(
                    "{} belongs to the run directory {} (its output_dir/name); resume it from there",
                    path.display(),
                    expected.display()
                );
            }
            train_and_report(&recipe, backend, no_dashboard)
        }
        Command::Train { args, backend, no_dashboard } => {
            let recipe = load_recipe(&args.recipe, &args.overrides)?;
            train_and_report(&recipe, backend, no_dashboard)
        }
    }
}

fn train_and_report(recipe: &m2m_burn_plugin::recipe::Recipe, backend: BackendChoice, no_dashboard: bool) -> anyhow::Result<()> {
    let progress = if no_dashboard { Progress::Log } else { Progress::Auto };
    let outcome = match backend {
        BackendChoice::Cpu => train_recipe::<m2m_burn_plugin::backend::Cpu>(recipe, Default::default(), progress)?,
        BackendChoice::Cuda { device } => train_cuda(recipe, device, progress)?,
    };
    let m = &outcome.metrics;
    println!("run: {}", outcome.run_dir.display());
    println!(
        "last epoch {}: test bACC {:.4}, GM {:.4}, minor {:.4}",
        m.last.epoch,
        m.last.test.balanced_accuracy,
        m.last.test.geometric_mean,
        m.last.test.minor.unwrap_or(f64::NAN)
    );
    println!(
        "best val epoch {}: test bACC {:.4}, GM {:.4}, minor {:.4}{}",
        m.best_val.epoch,
        m.best_val.test.balanced_accuracy,
        m.best_val.test.geometric_mean,
        m.best_val.test.minor.unwrap_or(f64::NAN),
        if m.selected_on_test { " (selected on the test set)" } else { "" }
    );
    Ok(())
}

#[cfg(feature = "cuda")]
fn train_cuda(recipe: &m2m_burn_plugin::recipe::Recipe, device: usize, progress: Progress) -> anyhow::Result<m2m_burn_plugin::train::RunOutcome> {
    m2m_burn_plugin::backend::probe_cuda(device)?;
    train_recipe::<m2m_burn_plugin::backend::Gpu>(recipe, burn::backend::cuda::CudaDevice::new(device), progress)
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(_: &m2m_burn_plugin::recipe::Recipe, _: usize, _: Progress) -> anyhow::Result<m2m_burn_plugin::train::RunOutcome> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}
