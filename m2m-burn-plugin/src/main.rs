//! The `m2m` command line: check and train RON recipes, run comparison suites and
//! report them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use m2m_burn_plugin::backend::BackendChoice;
use m2m_burn_plugin::recipe::{load_recipe, to_ron};
use m2m_burn_plugin::suite::{collect, load_suite, run_suite, write_report, Shard};
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
        /// cpu, cuda or cuda:N (default: the recipe's `backend`, else cpu).
        #[arg(long)]
        backend: Option<BackendChoice>,
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
        /// cpu, cuda or cuda:N (default: the recipe's `backend`, else cpu).
        #[arg(long)]
        backend: Option<BackendChoice>,
        /// Plain log lines even on a terminal (no dashboard).
        #[arg(long)]
        no_dashboard: bool,
    },
    /// Run every cell of a suite (skipping finished cells, resuming interrupted ones),
    /// then write its report.
    Suite {
        /// The RON suite file.
        suite: PathBuf,
        /// Run only cells j with j mod N == I (0-based), e.g. `--shard $SLURM_ARRAY_TASK_ID/8`.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Write cells and the report here instead of the suite's `output_dir`
        /// (e.g. one folder per shard; `m2m report` merges them).
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// cpu, cuda or cuda:N (default: the base recipe's `backend`, else cpu).
        #[arg(long)]
        backend: Option<BackendChoice>,
        /// List the cells (and their shard) without training.
        #[arg(long)]
        dry_run: bool,
    },
    /// Merge finished cells of suite folders (one per shard, or one) into report.md,
    /// report.csv and plots/.
    Report {
        /// Suite output folders holding suite.json and cells/.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Where to write the report (default: the first folder).
        #[arg(long)]
        out: Option<PathBuf>,
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
        Command::Suite { suite, shard, output_dir, backend, dry_run } => {
            let suite = load_suite(&suite, output_dir.as_deref())?;
            let shard = shard.unwrap_or(Shard::ALL);
            if dry_run {
                for (j, c) in suite.cells.iter().enumerate() {
                    let mark = if shard.owns(j) { "*" } else { " " };
                    println!("{mark} {j:4} shard {}/{}  {}", j % shard.count, shard.count, c.key.run_name());
                }
                println!("{} cells; * = in shard {}/{}", suite.cells.len(), shard.index, shard.count);
                return Ok(());
            }
            let backend = backend.or_else(|| suite.cells.first().map(|c| c.recipe.backend)).unwrap_or(BackendChoice::Cpu);
            let outcome = match backend {
                BackendChoice::Cpu => run_suite::<m2m_burn_plugin::backend::Cpu>(&suite, shard, Default::default(), Progress::Log)?,
                BackendChoice::Cuda { device } => suite_cuda(&suite, shard, device)?,
            };
            println!(
                "suite {}: {} cells trained now, {} already finished, {} failed",
                suite.name,
                outcome.trained.len(),
                outcome.skipped.len(),
                outcome.failed.len()
            );
            let report = collect(std::slice::from_ref(&suite.output_dir))?;
            let md = write_report(&report, &suite.output_dir)?;
            print_table(&report);
            println!("report: {}", md.display());
            if !outcome.failed.is_empty() {
                let list: Vec<String> = outcome.failed.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
                anyhow::bail!("{} cells failed (their finished epochs are kept; run the suite again to retry):\n{}", outcome.failed.len(), list.join("\n"));
            }
            Ok(())
        }
        Command::Report { dirs, out } => {
            let report = collect(&dirs)?;
            let md = write_report(&report, out.as_deref().unwrap_or(&dirs[0]))?;
            print_table(&report);
            println!("report: {}", md.display());
            Ok(())
        }
    }
}

/// The balanced-accuracy table on stdout.
fn print_table(report: &m2m_burn_plugin::suite::Report) {
    print!("{}", m2m_burn_plugin::suite::balanced_accuracy_table(report));
    if !report.missing.is_empty() {
        println!("{} of {} cells missing", report.missing.len(), report.total_cells);
    }
}

#[cfg(feature = "cuda")]
fn suite_cuda(suite: &m2m_burn_plugin::suite::Suite, shard: Shard, device: usize) -> anyhow::Result<m2m_burn_plugin::suite::SuiteOutcome> {
    m2m_burn_plugin::backend::probe_cuda(device)?;
    run_suite::<m2m_burn_plugin::backend::Gpu>(suite, shard, burn::backend::cuda::CudaDevice::new(device), Progress::Log)
}

#[cfg(not(feature = "cuda"))]
fn suite_cuda(_: &m2m_burn_plugin::suite::Suite, _: Shard, _: usize) -> anyhow::Result<m2m_burn_plugin::suite::SuiteOutcome> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}

fn train_and_report(recipe: &m2m_burn_plugin::recipe::Recipe, backend: Option<BackendChoice>, no_dashboard: bool) -> anyhow::Result<()> {
    let progress = if no_dashboard { Progress::Log } else { Progress::Auto };
    let outcome = match backend.unwrap_or(recipe.backend) {
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
