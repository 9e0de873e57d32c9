//! `m2m translate`: M2m's translation applied to named images with given g and f, its
//! outcome per translation (JSON), acceptance per target class, and a gallery.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};
use m2m_core::classifier::{Classifier, Mode};
use m2m_core::seed::ChaCha12Rng;
use m2m_core::translation::{PlannedSlot, TranslationConfig};
use rand::SeedableRng;
use serde::Serialize;

use super::{plan_jobs, translate_jobs, JobResult, Targets};
use crate::data::{DatasetName, NamedImages};
use crate::import::{import_net, ImportError, ImportReport, StateDict};
use crate::m2m::gallery::{write_gallery, GalleryItem};
use crate::model::{load_classifier, read_meta, resolve_model_source, Architecture, ModelSource, ModelSpec, Net};

/// Everything `m2m translate` takes.
#[derive(Debug, Clone)]
pub struct TranslateOptions {
    pub g: PathBuf,
    /// The classifier whose seed-class logit is pushed down; g when left out.
    pub f: Option<PathBuf>,
    /// Image shape and, for imported networks, the input normalisation.
    pub dataset: DatasetName,
    pub images: PathBuf,
    pub labels: Option<PathBuf>,
    pub prefix: Option<String>,
    pub limit: Option<usize>,
    pub targets: Targets,
    pub config: TranslationConfig,
    pub seed: u64,
    /// Translations per batch.
    pub batch_size: usize,
    pub json: Option<PathBuf>,
    pub logits: Option<PathBuf>,
    pub gallery: Option<PathBuf>,
    pub gallery_rows: usize,
    pub amplify: f32,
}

/// One translation, as written to the JSON file.
#[derive(Debug, Clone, Serialize)]
pub struct TranslationRecord {
    pub image: String,
    pub index: usize,
    pub seed_class: usize,
    pub target: usize,
    pub g_target_prob_before: f32,
    pub g_target_prob: f32,
    pub f_seed_prob_before: f32,
    pub f_seed_prob: f32,
    pub l2: f32,
    /// The gamma test: `g_target_prob >= gamma`.
    pub accepted: bool,
    /// Planned targets only: the seed weight `1 - beta^(N_k0 - N_k)` and its Bernoulli draw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_accept: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drawn: Option<bool>,
}

/// g's and f's logits for one image (`--logits`).
#[derive(Debug, Clone, Serialize)]
pub struct ImageLogits {
    pub image: String,
    pub label: usize,
    pub g_logits: Vec<f32>,
    pub f_logits: Vec<f32>,
}

/// Per target class: attempts, gamma passes, mean g confidence and L2.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClassSummary {
    pub attempts: usize,
    pub accepted: usize,
    pub g_target_prob_sum: f64,
    pub l2_sum: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TranslateSummary {
    pub per_target: Vec<ClassSummary>,
    pub records: Vec<TranslationRecord>,
    /// How each network was read (imported files only).
    pub g_import: Option<ImportReport>,
    pub f_import: Option<ImportReport>,
}

impl TranslateSummary {
    /// Acceptance per target class as a Markdown table.
    pub fn table(&self, class_names: &[String]) -> String {
        let mut s = String::from("| target | translations | accepted (g >= gamma) | rate | mean g on target | mean L2 |\n|---|---:|---:|---:|---:|---:|\n");
        let mut total = ClassSummary::default();
        for (k, c) in self.per_target.iter().enumerate().filter(|(_, c)| c.attempts > 0) {
            s.push_str(&row(&format!("{k} {}", class_names.get(k).map(String::as_str).unwrap_or("")), c));
            total.attempts += c.attempts;
            total.accepted += c.accepted;
            total.g_target_prob_sum += c.g_target_prob_sum;
            total.l2_sum += c.l2_sum;
        }
        s.push_str(&row("all", &total));
        s
    }
}

fn row(name: &str, c: &ClassSummary) -> String {
    let n = c.attempts.max(1) as f64;
    format!(
        "| {name} | {} | {} | {:.1}% | {:.3} | {:.3} |\n",
        c.attempts,
        c.accepted,
        100.0 * c.accepted as f64 / n,
        c.g_target_prob_sum / n,
        c.l2_sum / n
    )
}

/// The model an imported ResNet-32 file is read into for `dataset`: the data set's input
/// shape, classes and normalisation, and the head the file has (`resnet32_norm`'s cosine
/// head has no `linear.bias`).
pub fn imported_spec(sd: &StateDict, dataset: DatasetName) -> ModelSpec {
    let (mean, std) = dataset.normalization();
    ModelSpec {
        architecture: Architecture::ResNet32,
        cosine_head: sd.get("linear.bias").is_none() && sd.get("linear.weight").is_some(),
        in_channels: dataset.image_shape().0,
        num_classes: dataset.num_classes(),
        mean,
        std,
    }
}

/// A network for the data set: a model saved by m2m (its own spec), or an imported
/// ResNet-32 whose head kind the file decides.
pub fn load_for_dataset<B: AutodiffBackend>(
    path: &Path,
    dataset: DatasetName,
    device: &B::Device,
) -> anyhow::Result<(Net<B>, Option<ImportReport>)> {
    match resolve_model_source(path)? {
        ModelSource::Ours(p) => {
            let spec = read_meta(&p)?.spec;
            let (c, _, _) = dataset.image_shape();
            anyhow::ensure!(
                spec.in_channels == c && spec.num_classes == dataset.num_classes(),
                "{}: the model takes {} channels and {} classes, {dataset:?} has {c} and {}",
                p.display(),
                spec.in_channels,
                spec.num_classes,
                dataset.num_classes()
            );
            Ok((load_classifier(&spec, &p, device)?, None))
        }
        ModelSource::Foreign(p) => {
            let sd = StateDict::read(&p)?;
            let spec = imported_spec(&sd, dataset);
            let (net, report) = import_net(&spec, &sd, device).map_err(|kind| ImportError::new(&p, kind))?;
            Ok((net, Some(report)))
        }
    }
}

fn host<Bk: burn::tensor::backend::Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 data")
}

/// Runs the translations, writes the requested files and returns the summary.
pub fn run_translate<B: AutodiffBackend>(o: &TranslateOptions, device: &B::Device) -> anyhow::Result<TranslateSummary> {
    let (g, g_import) = load_for_dataset::<B>(&o.g, o.dataset, device).context("loading g")?;
    let (f, f_import) = match &o.f {
        Some(p) => load_for_dataset::<B>(p, o.dataset, device).context("loading f")?,
        None => (g.clone(), None),
    };
    let mut named = NamedImages::read(o.dataset, &o.images, o.labels.as_deref(), o.prefix.as_deref())?;
    if let Some(n) = o.limit {
        named = named.take(n);
    }
    let set = &named.set;
    let pixels: Vec<f32> = set.pixels.iter().map(|&b| b as f32 / 255.0).collect();
    let images =
        Tensor::<B, 4>::from_data(TensorData::new(pixels, [set.len(), set.channels, set.height, set.width]), device);
    if let Some(path) = &o.logits {
        write_json(path, &image_logits(&f, &g, images.clone(), &named, o.dataset.num_classes()))?;
    }

    let mut rng = ChaCha12Rng::seed_from_u64(o.seed);
    let jobs = plan_jobs(&set.labels, &o.targets, o.dataset.num_classes(), &mut rng);
    anyhow::ensure!(
        !jobs.is_empty(),
        "no translation to make: every image already has the target class, or no slot was planned"
    );
    let planned = matches!(o.targets, Targets::Planned { .. });
    let mut per_target = vec![ClassSummary::default(); o.dataset.num_classes()];
    let mut records = Vec::with_capacity(jobs.len());
    let mut gallery = Gallery { rows: o.gallery_rows, candidates: Vec::new() };
    let per = set.image_len();
    for chunk in jobs.chunks(o.batch_size.max(1)) {
        let (results, translated) = translate_jobs(&f, &g, &images, chunk, &o.config, planned, &mut rng);
        let translated = if o.gallery.is_some() { host(translated) } else { Vec::new() };
        for (i, (job, r)) in chunk.iter().zip(&results).enumerate() {
            per_target[job.target].add(r);
            records.push(TranslationRecord::of(job, r, &named.names[job.seed], planned));
            if o.gallery.is_some() {
                let translated = translated[i * per..(i + 1) * per].to_vec();
                gallery.candidates.push((
                    r.passes_gamma,
                    r.g_target_prob,
                    gallery_item(job, r, &named, translated, o.dataset),
                ));
            }
        }
        gallery.keep_best();
    }
    if let Some(path) = &o.json {
        write_json(path, &records)?;
    }
    if let Some(path) = &o.gallery {
        let items: Vec<GalleryItem> = gallery.candidates.into_iter().map(|(_, _, item)| item).collect();
        write_gallery(path, &items, (set.channels, set.height, set.width), o.amplify)?;
    }
    Ok(TranslateSummary { per_target, records, g_import, f_import })
}

/// g's and f's logits for every image (`k` classes).
fn image_logits<B: AutodiffBackend>(
    f: &Net<B>,
    g: &Net<B>,
    images: Tensor<B, 4>,
    named: &NamedImages,
    k: usize,
) -> Vec<ImageLogits> {
    let g_logits = host(g.logits(images.clone(), Mode::Eval));
    let f_logits = host(f.logits(images, Mode::Eval));
    (0..named.set.len())
        .map(|i| ImageLogits {
            image: named.names[i].clone(),
            label: named.set.labels[i],
            g_logits: g_logits[i * k..(i + 1) * k].to_vec(),
            f_logits: f_logits[i * k..(i + 1) * k].to_vec(),
        })
        .collect()
}

impl ClassSummary {
    fn add(&mut self, r: &JobResult) {
        self.attempts += 1;
        self.accepted += r.passes_gamma as usize;
        self.g_target_prob_sum += r.g_target_prob as f64;
        self.l2_sum += r.l2 as f64;
    }
}

impl TranslationRecord {
    /// The record of translation `job` of image `image`, with result `r`.
    fn of(job: &PlannedSlot, r: &JobResult, image: &str, planned: bool) -> Self {
        TranslationRecord {
            image: image.to_string(),
            index: job.seed,
            seed_class: job.seed_class,
            target: job.target,
            g_target_prob_before: r.g_target_prob_before,
            g_target_prob: r.g_target_prob,
            f_seed_prob_before: r.f_seed_prob_before,
            f_seed_prob: r.f_seed_prob,
            l2: r.l2,
            accepted: r.passes_gamma,
            p_accept: planned.then_some(job.p_accept),
            drawn: r.drawn,
        }
    }
}

/// The gallery's candidates (accepted, g's confidence, the picture): accepted first, then
/// by g's confidence; at most `rows` kept.
struct Gallery {
    rows: usize,
    candidates: Vec<(bool, f32, GalleryItem)>,
}

impl Gallery {
    fn keep_best(&mut self) {
        self.candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
        self.candidates.truncate(self.rows);
    }
}

/// One gallery row: the seed image, its translation and what happened to it.
fn gallery_item(
    job: &PlannedSlot,
    r: &JobResult,
    named: &NamedImages,
    translated: Vec<f32>,
    dataset: DatasetName,
) -> GalleryItem {
    let names = dataset.class_names();
    let seed = named.set.image(job.seed).iter().map(|&b| b as f32 / 255.0).collect();
    let lines = vec![
        format!("{} -> {}", names[job.seed_class], names[job.target]),
        format!("g: {:.2} -> {:.2}", r.g_target_prob_before, r.g_target_prob),
        format!("L2 {:.2} {}", r.l2, if r.passes_gamma { "accepted" } else { "rejected" }),
        named.names[job.seed].clone(),
    ];
    GalleryItem { seed, translated, lines }
}

fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    crate::fs::write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}
