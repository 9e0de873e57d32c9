//! `m2m translate`: M2m's translation applied to named images, with no training.

use std::path::PathBuf;

use m2m_burn_plugin::backend::{run_on, BackendChoice, BackendTask};
use m2m_burn_plugin::data::DatasetName;
use m2m_burn_plugin::recipe::{check_translation, RawM2m};
use m2m_burn_plugin::run::diagnose::{run_translate, Targets, TranslateOptions, TranslateSummary};
use m2m_core::translation::{RandomStart, SeedSelection};

use super::DatasetArg;

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
pub struct Args {
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
    /// cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N or wgpu:cpu.
    #[arg(long, default_value = "cpu")]
    backend: BackendChoice,
}

impl Args {
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
                Targets::Planned { counts, beta: self.beta, selection: SeedSelection::PerSample }
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

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let options = self.options()?;
        let summary = run_on(self.backend, Translate(&options))?;
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
}

struct Translate<'a>(&'a TranslateOptions);

impl BackendTask for Translate<'_> {
    type Output = TranslateSummary;
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> anyhow::Result<TranslateSummary> {
        run_translate::<B>(self.0, &device)
    }
}
