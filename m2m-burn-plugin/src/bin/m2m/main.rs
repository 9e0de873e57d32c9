//! The `m2m` command line: check and train RON recipes, run comparison suites and report
//! them, and look at M2m's translations. `main` only parses and dispatches: each command
//! is a module of [`commands`] holding its clap arguments and its handler.

mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use commands::{check, data, export_images, import, probe, report, resume, suite, train, translate};
use m2m_burn_plugin::stop;

#[derive(Parser)]
#[command(name = "m2m", version, about = "M2m and imbalanced-classification baselines on burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a recipe and print it fully resolved (bases and overrides applied).
    Check(check::Args),
    /// Read and prepare a recipe's data (decoding image files into the cache) and print
    /// what a run would train and evaluate on: counts, classes, normalisation.
    Data(data::Args),
    /// Resume (or finish) the run in RUN_DIR from its own resolved recipe.
    Resume(resume::Args),
    /// Translate class-balanced training batches with the recipe's M2m settings and report
    /// acceptance and g's confidence per class (training data only).
    Probe(probe::Args),
    /// Train a recipe; an interrupted run resumes from its run directory.
    Train(train::Args),
    /// Run every cell of a suite (skipping finished cells, resuming interrupted ones),
    /// then write its report.
    Suite(suite::Args),
    /// Translate named images with M2m's translation through g and f (no training), and
    /// report g's confidence, L2 distance and acceptance per translation and target class.
    Translate(Box<translate::Args>),
    /// Write a built-in data set as PNG files in a layout `dataset.images` reads: one
    /// subfolder per class, or split files (see docs/recipes.md).
    ExportImages(export_images::Args),
    /// Convert a PyTorch (legacy .t7 or zip .pt/.pth) or safetensors checkpoint into a
    /// model saved by m2m, and print where each tensor went.
    Import(import::Args),
    /// Merge finished cells of suite folders (one per shard, or one) into report.md,
    /// report.csv and plots/.
    Report(report::Args),
}

impl Command {
    fn run(self) -> anyhow::Result<()> {
        match self {
            Command::Check(a) => a.run(),
            Command::Data(a) => a.run(),
            Command::Resume(a) => a.run(),
            Command::Probe(a) => a.run(),
            Command::Train(a) => a.run(),
            Command::Suite(a) => a.run(),
            Command::Translate(a) => a.run(),
            Command::ExportImages(a) => a.run(),
            Command::Import(a) => a.run(),
            Command::Report(a) => a.run(),
        }
    }

    /// Whether burn's terminal dashboard will own the terminal.
    fn shows_dashboard(&self) -> bool {
        let asks = match self {
            Command::Train(a) => !a.no_dashboard,
            Command::Resume(a) => !a.no_dashboard,
            _ => false,
        };
        asks && std::io::stdout().is_terminal()
    }
}

/// Whether m2m's own lines may carry colour codes: on a terminal, unless `NO_COLOR` is set
/// to anything but the empty string (<https://no-color.org>).
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn main() -> ExitCode {
    m2m_burn_plugin::malloc::keep_freed_buffers();
    m2m_burn_plugin::stop::restore_sigpipe();
    let cli = Cli::parse();
    // burn's dashboard owns the terminal while it runs: log lines would tear it, so only
    // warnings go to stderr then (the epoch results are in the run directory anyway).
    let default_level = if cli.command.shows_dashboard() { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // burn-train logs every checkpoint it restores; the training loop restores
                // each one it writes (train/strategy.rs), which says nothing to a reader.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(format!("{default_level},burn_train::checkpoint=warn"))
                }),
        )
        // Above a suite's progress bar when one is shown.
        .with_writer(m2m_burn_plugin::terminal::StderrAboveBar)
        // Colour codes only on a terminal: logs redirected to a file or a pipe stay plain text.
        .with_ansi(colour(std::io::stderr().is_terminal()))
        .init();
    if let Err(e) = m2m_burn_plugin::stop::install_signal_handlers() {
        tracing::warn!("SIGTERM and SIGINT will end m2m at once: installing their handlers failed: {e}");
    }
    match cli.command.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match m2m_burn_plugin::stopped_by(&e) {
            // Not a failure: the same command resumes (documented in docs/suites.md).
            Some(_) => {
                eprintln!("{e:#}\nrun the same command again to resume (exit status {})", stop::EXIT_STOPPED);
                ExitCode::from(stop::EXIT_STOPPED)
            }
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
