//! The `m2m` command line: check and train RON recipes, run comparison suites and
//! report them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use m2m_burn_plugin::backend::BackendChoice;
use m2m_burn_plugin::data::{images, DatasetName};
use m2m_burn_plugin::model::import::{import_net, ImportError, StateDict};
use m2m_burn_plugin::model::save_classifier;
use m2m_burn_plugin::recipe::{check_translation, RawM2m};
use m2m_burn_plugin::recipe::{load_recipe, to_ron};
use m2m_burn_plugin::run::diagnose::{imported_spec, run_translate, Targets, TranslateOptions, TranslateSummary};
use m2m_burn_plugin::run::{run_recipe_with, Prefixes, Progress};
use m2m_burn_plugin::suite::{collect, load_suite, run_suite_with, write_report, Shard};
use m2m_core::translation::RandomStart;

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
    /// Read and prepare a recipe's data (decoding image files into the cache) and print
    /// what a run would train and evaluate on: counts, classes, normalisation.
    Data(RecipeArgs),
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
        /// Keep the checkpoint after these epoch counts (e.g. `--keep-epochs 160`) so
        /// that other recipes can start from this run there: `start_from: (run: ..., epoch: 160)`.
        #[arg(long, value_delimiter = ',', value_name = "E,...")]
        keep_epochs: Vec<usize>,
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
        /// Train every cell from epoch 0 instead of forking cells from the first epochs
        /// they share with an earlier cell (same results, more time).
        #[arg(long)]
        no_fork: bool,
    },
    /// Translate named images with M2m's translation through g and f (no training), and
    /// report g's confidence, L2 distance and acceptance per translation and target class.
    Translate(Box<TranslateArgs>),
    /// Write a built-in data set as PNG files in a layout `dataset.images` reads: one
    /// subfolder per class, or split files (see docs/recipes.md).
    ExportImages {
        #[arg(long)]
        dataset: DatasetArg,
        /// The folder with the data set's files (default: where recipes look).
        #[arg(long)]
        path: Option<PathBuf>,
        /// The folder to write (`train/`, `test/`; or `images/` and `train.txt`, `test.txt`).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "class-folders")]
        layout: LayoutArg,
        /// Only the first N images of each class of each split.
        #[arg(long)]
        per_class: Option<usize>,
    },
    /// Convert a PyTorch (legacy .t7 or zip .pt/.pth) or safetensors checkpoint into a
    /// model saved by m2m, and print where each tensor went.
    Import {
        /// The checkpoint file.
        file: PathBuf,
        /// resnet32 (the M2m reference's resnet32 / resnet32_norm / resnet32_gray).
        #[arg(long, default_value = "resnet32")]
        architecture: String,
        /// Number of classes the network was trained on.
        #[arg(long)]
        classes: usize,
        /// The data set whose input normalisation and image shape the network expects
        /// (cifar10, cifar100, fashion-mnist, mnist); default: CIFAR-10 or CIFAR-100 by --classes.
        #[arg(long)]
        dataset: Option<DatasetArg>,
        /// Output folder: `model.mpk` + `model.meta.json` (use as `g: Checkpoint("DIR/model")`) and `import.json`.
        #[arg(long)]
        out: PathBuf,
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

/// An image-file layout of `m2m export-images`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LayoutArg {
    ClassFolders,
    SplitFiles,
}

/// A data set named on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DatasetArg {
    Cifar10,
    Cifar100,
    FashionMnist,
    Mnist,
}

impl From<DatasetArg> for DatasetName {
    fn from(d: DatasetArg) -> DatasetName {
        match d {
            DatasetArg::Cifar10 => DatasetName::Cifar10,
            DatasetArg::Cifar100 => DatasetName::Cifar100,
            DatasetArg::FashionMnist => DatasetName::FashionMnist,
            DatasetArg::Mnist => DatasetName::Mnist,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RandomStartArg {
    /// Start at the seed itself (the reference's random_start=False).
    None,
    /// The reference's channel-wise L2 renorm of U(-1/2, 1/2) noise (training's default).
    Reference,
    /// Each image's noise scaled to L2 <= the radius.
    PerSample,
}

#[derive(clap::Args)]
struct TranslateArgs {
    /// g: a PyTorch/safetensors checkpoint, a model saved by m2m (path without extension) or a run directory.
    #[arg(long)]
    g: PathBuf,
    /// f, whose seed-class logit the translation pushes down (lambda); default: g.
    #[arg(long)]
    f: Option<PathBuf>,
    /// Image shape, class names and (for imported networks) input normalisation.
    #[arg(long)]
    dataset: DatasetArg,
    /// A folder of PNG files named ..._L.png (L = label), a CIFAR binary batch file, or an IDX image file (with --labels).
    #[arg(long)]
    images: PathBuf,
    /// The IDX label file that goes with --images.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Only PNG files whose names start with this (e.g. cifar10_).
    #[arg(long)]
    prefix: Option<String>,
    /// Only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// all-others (every image toward every other class), planned (M2m's slot and seed
    /// rules on the images as one batch, with --counts or --ratio), or a class index K.
    #[arg(long, default_value = "all-others")]
    targets: String,
    /// Training class counts for --targets planned, comma separated.
    #[arg(long, value_delimiter = ',')]
    counts: Option<Vec<usize>>,
    /// Or: an exponential long-tailed profile with this imbalance ratio ...
    #[arg(long)]
    ratio: Option<f64>,
    /// ... and this many images in the largest class.
    #[arg(long, default_value_t = 5000)]
    max_per_class: usize,
    #[arg(long, default_value_t = 0.5)]
    lambda: f64,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 0.1)]
    step_size: f64,
    #[arg(long, default_value_t = 0.9)]
    gamma: f64,
    #[arg(long, default_value_t = 0.999)]
    beta: f64,
    #[arg(long, value_enum, default_value = "reference")]
    random_start: RandomStartArg,
    #[arg(long, default_value_t = 0.5)]
    start_radius: f64,
    /// Seed of the random start and of planned targets.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Translations per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Write one JSON object per translation here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write g's and f's logits per image here (JSON).
    #[arg(long)]
    logits: Option<PathBuf>,
    /// Draw seed, translation and amplified difference into this PNG.
    #[arg(long)]
    gallery: Option<PathBuf>,
    /// Rows of the gallery (accepted translations first, then by g's confidence).
    #[arg(long, default_value_t = 12)]
    gallery_rows: usize,
    /// How much the gallery amplifies the difference.
    #[arg(long, default_value_t = 10.0)]
    amplify: f32,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    backend: BackendChoice,
}

impl TranslateArgs {
    fn options(&self) -> anyhow::Result<TranslateOptions> {
        let dataset: DatasetName = self.dataset.into();
        let classes = dataset.num_classes();
        let targets = match self.targets.as_str() {
            "all-others" => Targets::AllOthers,
            "planned" => {
                let counts = match (&self.counts, self.ratio) {
                    (Some(c), None) => c.clone(),
                    (None, Some(r)) => {
                        anyhow::ensure!(r.is_finite() && r >= 1.0, "--ratio must be >= 1, got {r}");
                        m2m_core::imbalance::class_counts(
                            self.max_per_class,
                            classes,
                            r,
                            m2m_core::imbalance::ImbalanceProfile::Exponential,
                        )
                    }
                    _ => anyhow::bail!(
                        "--targets planned needs the training class counts: --counts N0,N1,... or --ratio R"
                    ),
                };
                anyhow::ensure!(
                    counts.len() == classes,
                    "--counts has {} entries, {dataset:?} has {classes} classes",
                    counts.len()
                );
                Targets::Planned { counts, beta: self.beta }
            }
            k => match k.parse::<usize>() {
                Ok(k) if k < classes => Targets::Class(k),
                _ => anyhow::bail!("--targets {k}: use all-others, planned or a class index below {classes}"),
            },
        };
        let raw = RawM2m {
            beta: Some(self.beta),
            lambda: Some(self.lambda),
            gamma: Some(self.gamma),
            step_size: Some(self.step_size),
            steps: Some(self.steps),
            random_start: Some(match self.random_start {
                RandomStartArg::None => RandomStart::None,
                RandomStartArg::Reference => RandomStart::ReferenceChannelwise,
                RandomStartArg::PerSample => RandomStart::PerSample,
            }),
            start_radius: Some(self.start_radius),
            ..RawM2m::default()
        };
        // The recipe's own checks, so that the flags are held to the same ranges.
        let config = check_translation(&raw)
            .map_err(|e| anyhow::anyhow!("--{}: {}", e.field.trim_start_matches("m2m.").replace('_', "-"), e.reason))?;
        Ok(TranslateOptions {
            g: self.g.clone(),
            f: self.f.clone(),
            dataset,
            images: self.images.clone(),
            labels: self.labels.clone(),
            prefix: self.prefix.clone(),
            limit: self.limit,
            targets,
            config,
            seed: self.seed,
            batch_size: self.batch,
            json: self.json.clone(),
            logits: self.logits.clone(),
            gallery: self.gallery.clone(),
            gallery_rows: self.gallery_rows,
            amplify: self.amplify,
        })
    }
}

fn main() -> ExitCode {
    m2m_burn_plugin::malloc::keep_freed_buffers();
    let cli = Cli::parse();
    // burn's dashboard owns the terminal while it runs: log lines would tear it, so only
    // warnings go to stderr then (the epoch results are in the run directory anyway).
    let dashboard = std::io::stdout().is_terminal()
        && matches!(
            cli.command,
            Command::Train { no_dashboard: false, .. } | Command::Resume { no_dashboard: false, .. }
        );
    let default_level = if dashboard { "warn" } else { "info" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: logs redirected to a file or a pipe stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
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
        Command::Data(a) => {
            let recipe = load_recipe(&a.recipe, &a.overrides)?;
            let started = std::time::Instant::now();
            let data = recipe.dataset.prepare()?;
            let m = &data.manifest;
            println!(
                "{} from {} (prepared in {:.2} s)",
                m.dataset,
                m.source.display(),
                started.elapsed().as_secs_f64()
            );
            println!(
                "images {}x{}x{}, {} classes, normalisation mean {:?} std {:?}",
                m.format.channels,
                m.format.height,
                m.format.width,
                m.format.num_classes(),
                m.format.mean,
                m.format.std
            );
            println!(
                "training: {} images, imbalance {:.1}, subset {}",
                m.train_total, m.imbalance_factor, m.subset_fingerprint
            );
            for (k, (name, n)) in m.format.class_names.iter().zip(&m.train_counts).enumerate() {
                println!("  {k:>3} {name:<24} {n}");
            }
            println!(
                "validation: {} images; test: {} images{}",
                m.val_size,
                m.test_size,
                if m.selected_on_test { " (selection on the test set)" } else { "" }
            );
            Ok(())
        }
        Command::Probe { args, g, f, batches } => {
            let recipe = load_recipe(&args.recipe, &args.overrides)?;
            let device = Default::default();
            let s = m2m_burn_plugin::run::diagnose::probe_translation::<m2m_burn_plugin::backend::Cpu>(
                &recipe,
                &g,
                f.as_deref(),
                batches,
                &device,
            )?;
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
        Command::Resume { run_dir, backend, no_dashboard } => {
            let path = m2m_burn_plugin::run_dir::RunDir::new(run_dir.clone()).recipe_path();
            let recipe = load_recipe(&path, &[])?;
            let expected = recipe.run_dir();
            if std::fs::canonicalize(&expected).ok() != std::fs::canonicalize(&run_dir).ok() {
                anyhow::bail!(
                    "{} belongs to the run directory {} (its output_dir/name); resume it from there",
                    path.display(),
                    expected.display()
                );
            }
            train_and_report(&recipe, backend, no_dashboard, &Prefixes::default())
        }
        Command::Train { args, keep_epochs, backend, no_dashboard } => {
            let recipe = load_recipe(&args.recipe, &args.overrides)?;
            if let Some(&bad) = keep_epochs.iter().find(|&&e| e == 0 || e >= recipe.epochs) {
                anyhow::bail!(
                    "--keep-epochs {bad}: must be in 1..{} (schedule.epochs = {})",
                    recipe.epochs,
                    recipe.epochs
                );
            }
            train_and_report(&recipe, backend, no_dashboard, &Prefixes { keep: keep_epochs, fork_from: None })
        }
        Command::Suite { suite, shard, output_dir, backend, dry_run, no_fork } => {
            let suite = load_suite(&suite, output_dir.as_deref())?;
            let shard = shard.unwrap_or(Shard::ALL);
            if dry_run {
                let (plans, _) = m2m_burn_plugin::suite::plan_forks(&suite.cells);
                for (j, c) in suite.cells.iter().enumerate() {
                    let mark = if shard.owns(j) { "*" } else { " " };
                    let fork = plans[j].map_or(String::new(), |p| {
                        format!("  (fork of {} after epoch {})", suite.cells[p.source].key.run_name(), p.epoch)
                    });
                    println!("{mark} {j:4} shard {}/{}  {}{fork}", j % shard.count, shard.count, c.key.run_name());
                }
                println!("{} cells; * = in shard {}/{}", suite.cells.len(), shard.index, shard.count);
                return Ok(());
            }
            let backend =
                backend.or_else(|| suite.cells.first().map(|c| c.recipe.backend)).unwrap_or(BackendChoice::Cpu);
            let outcome = match backend {
                BackendChoice::Cpu => run_suite_with::<m2m_burn_plugin::backend::Cpu>(
                    &suite,
                    shard,
                    Default::default(),
                    Progress::Log,
                    !no_fork,
                )?,
                BackendChoice::Cuda { device } => suite_cuda(&suite, shard, device, !no_fork)?,
            };
            println!(
                "suite {}: {} cells trained now ({} of them forked from another cell's first epochs), {} already finished, {} failed",
                suite.name,
                outcome.trained.len(),
                outcome.forked.len(),
                outcome.skipped.len(),
                outcome.failed.len()
            );
            let report = collect(std::slice::from_ref(&suite.output_dir))?;
            let md = write_report(&report, &suite.output_dir)?;
            print_table(&report);
            println!("report: {}", md.display());
            if !outcome.failed.is_empty() {
                let list: Vec<String> = outcome.failed.iter().map(|(n, e)| format!("  {n}: {e}")).collect();
                anyhow::bail!(
                    "{} cells failed (their finished epochs are kept; run the suite again to retry):\n{}",
                    outcome.failed.len(),
                    list.join("\n")
                );
            }
            Ok(())
        }
        Command::ExportImages { dataset, path, out, layout, per_class } => {
            let dataset: DatasetName = dataset.into();
            let dir = dataset.locate(path.as_deref())?;
            let (train, test) = dataset.read(&dir)?;
            let (train, test) = match per_class {
                Some(n) => (train.first_per_class(n), test.first_per_class(n)),
                None => (train, test),
            };
            let started = std::time::Instant::now();
            let splits = [("train", &train), ("test", &test)];
            let written = match layout {
                LayoutArg::ClassFolders => images::export_class_folders(&out, &splits, &dataset.class_names())?,
                LayoutArg::SplitFiles => images::export_split_files(&out, &splits)?,
            };
            println!(
                "wrote {written} PNG files of {dataset:?} from {} to {} in {:.1} s",
                dir.display(),
                out.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Translate(args) => {
            let options = args.options()?;
            let summary = match args.backend {
                BackendChoice::Cpu => run_translate::<m2m_burn_plugin::backend::Cpu>(&options, &Default::default())?,
                BackendChoice::Cuda { device } => translate_cuda(&options, device)?,
            };
            let c = &options.config;
            println!(
                "{} translations, lambda {}, {} steps of {}, random start {:?}, gamma {}",
                summary.records.len(),
                c.lambda(),
                c.steps(),
                c.step_size(),
                c.random_start(),
                c.gamma()
            );
            print!("{}", summary.table(&options.dataset.class_names()));
            for (what, path) in
                [("translations", &options.json), ("logits", &options.logits), ("gallery", &options.gallery)]
            {
                if let Some(p) = path {
                    println!("{what}: {}", p.display());
                }
            }
            Ok(())
        }
        Command::Import { file, architecture, classes, dataset, out } => {
            let dataset: DatasetName = match (dataset, classes) {
                (Some(d), _) => d.into(),
                (None, 10) => DatasetName::Cifar10,
                (None, 100) => DatasetName::Cifar100,
                (None, k) => anyhow::bail!(
                    "--dataset is needed for a network with {k} classes (its normalisation and image shape)"
                ),
            };
            anyhow::ensure!(
                dataset.num_classes() == classes,
                "--classes {classes}, but {dataset:?} has {} classes",
                dataset.num_classes()
            );
            anyhow::ensure!(
                architecture == "resnet32",
                "--architecture {architecture}: only resnet32 checkpoints can be imported"
            );
            let sd = StateDict::read(&file)?;
            let spec = imported_spec(&sd, dataset);
            let device = Default::default();
            let (net, report) = import_net::<m2m_burn_plugin::backend::Cpu>(&spec, &sd, &device)
                .map_err(|kind| ImportError::new(&file, kind))?;
            let model = out.join("model");
            save_classifier(&net, &spec, &model)?;
            let json = serde_json::to_string_pretty(&report)?;
            m2m_burn_plugin::fs::write_atomic(&out.join("import.json"), json.as_bytes())?;
            println!(
                "{}: {} ({})",
                file.display(),
                report.format,
                match &report.nested_under {
                    Some(k) => format!("state dict under {k:?}"),
                    None => "state dict at the top level".into(),
                }
            );
            print!("{}", report.table());
            if !report.ignored.is_empty() {
                println!("ignored: {} BatchNorm num_batches_tracked counters", report.ignored.len());
            }
            if !report.outside.is_empty() {
                println!("not read (outside the state dict): {}", report.outside.join(", "));
            }
            println!(
                "saved {} (ResNet-32, {} head, {classes} classes, {dataset:?} normalisation); use it as m2m.g: Checkpoint({:?})",
                model.display(),
                if spec.cosine_head { "cosine" } else { "linear" },
                model.display().to_string()
            );
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
fn suite_cuda(
    suite: &m2m_burn_plugin::suite::Suite,
    shard: Shard,
    device: usize,
    fork: bool,
) -> anyhow::Result<m2m_burn_plugin::suite::SuiteOutcome> {
    m2m_burn_plugin::backend::probe_cuda(device)?;
    run_suite_with::<m2m_burn_plugin::backend::Gpu>(
        suite,
        shard,
        burn::backend::cuda::CudaDevice::new(device),
        Progress::Log,
        fork,
    )
}

#[cfg(not(feature = "cuda"))]
fn suite_cuda(
    _: &m2m_burn_plugin::suite::Suite,
    _: Shard,
    _: usize,
    _: bool,
) -> anyhow::Result<m2m_burn_plugin::suite::SuiteOutcome> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}

fn train_and_report(
    recipe: &m2m_burn_plugin::recipe::Recipe,
    backend: Option<BackendChoice>,
    no_dashboard: bool,
    prefixes: &Prefixes,
) -> anyhow::Result<()> {
    let progress = if no_dashboard { Progress::Log } else { Progress::Auto };
    let outcome = match backend.unwrap_or(recipe.backend) {
        BackendChoice::Cpu => {
            run_recipe_with::<m2m_burn_plugin::backend::Cpu>(recipe, Default::default(), progress, prefixes)?
        }
        BackendChoice::Cuda { device } => train_cuda(recipe, device, progress, prefixes)?,
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
fn translate_cuda(options: &TranslateOptions, device: usize) -> anyhow::Result<TranslateSummary> {
    m2m_burn_plugin::backend::probe_cuda(device)?;
    run_translate::<m2m_burn_plugin::backend::Gpu>(options, &burn::backend::cuda::CudaDevice::new(device))
}

#[cfg(not(feature = "cuda"))]
fn translate_cuda(_: &TranslateOptions, _: usize) -> anyhow::Result<TranslateSummary> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}

#[cfg(feature = "cuda")]
fn train_cuda(
    recipe: &m2m_burn_plugin::recipe::Recipe,
    device: usize,
    progress: Progress,
    prefixes: &Prefixes,
) -> anyhow::Result<m2m_burn_plugin::train::RunOutcome> {
    m2m_burn_plugin::backend::probe_cuda(device)?;
    run_recipe_with::<m2m_burn_plugin::backend::Gpu>(
        recipe,
        burn::backend::cuda::CudaDevice::new(device),
        progress,
        prefixes,
    )
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(
    _: &m2m_burn_plugin::recipe::Recipe,
    _: usize,
    _: Progress,
    _: &Prefixes,
) -> anyhow::Result<m2m_burn_plugin::train::RunOutcome> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}
