//! Translation diagnostics: what M2m's translation does to given images with given
//! networks, without training. `m2m translate` (named images, any targets) and
//! `m2m probe` (a recipe's class-balanced training batches) both go through
//! [`translate_jobs`].

mod probe;
mod translate;

use burn::module::AutodiffModule;
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use m2m_core::classifier::{Classifier, Mode};
use m2m_core::translation::{
    acceptance_draws, int_tensor, plan_slots, translate, PlannedSlot, SeedSelection, TranslationConfig,
};
use rand::Rng;
use serde::Serialize;

pub use probe::{probe_recipe, probe_translation};
pub use translate::{imported_spec, run_translate, TranslateOptions, TranslateSummary};

/// Which translations to make from a set of labelled images.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Every image toward every class but its own.
    AllOthers,
    /// M2m's own rules on the images as one batch: slots chosen with probability
    /// `1 - N_k / N_max`, seeds drawn with weight `1 - beta^(N_k0 - N_k)`, and the
    /// Bernoulli acceptance draw.
    Planned {
        /// Training images per class.
        counts: Vec<usize>,
        /// Seed-weight and acceptance beta.
        beta: f64,
        /// How seeds are drawn.
        selection: SeedSelection,
    },
    /// Every image not of class `K` toward `K`.
    Class(usize),
}

/// The translations to make: `PlannedSlot`s whose `seed` is a row of the images.
pub fn plan_jobs<R: Rng + ?Sized>(
    labels: &[usize],
    targets: &Targets,
    num_classes: usize,
    rng: &mut R,
) -> Vec<PlannedSlot> {
    let job =
        |seed: usize, target: usize| PlannedSlot { slot: seed, target, seed, seed_class: labels[seed], p_accept: 1.0 };
    match targets {
        Targets::AllOthers => (0..labels.len())
            .flat_map(|i| (0..num_classes).filter(move |&k| k != labels[i]).map(move |k| (i, k)))
            .map(|(i, k)| job(i, k))
            .collect(),
        Targets::Class(k) => (0..labels.len()).filter(|&i| labels[i] != *k).map(|i| job(i, *k)).collect(),
        Targets::Planned { counts, beta, selection } => plan_slots(labels, counts, *beta, *selection, rng),
    }
}

/// What one translation did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobResult {
    /// g's softmax on the target, on the seed and on the translation.
    pub g_target_prob_before: f32,
    pub g_target_prob: f32,
    /// f's softmax on the seed class, on the seed and on the translation.
    pub f_seed_prob_before: f32,
    pub f_seed_prob: f32,
    /// `||x* - x0||_2` in [0, 1] pixel space.
    pub l2: f32,
    /// g's confidence passed gamma.
    pub passes_gamma: bool,
    /// The Bernoulli(`p_accept`) draw, for planned translations.
    pub drawn: Option<bool>,
}

impl JobResult {
    /// What M2m would do with it: the gamma test, and the draw where there is one.
    pub fn accepted(&self) -> bool {
        self.passes_gamma && self.drawn.unwrap_or(true)
    }
}

fn gather_prob<B: AutodiffBackend>(logits: Tensor<B::InnerBackend, 2>, classes: &[usize]) -> Vec<f32> {
    let n = classes.len();
    let device = logits.device();
    let idx = int_tensor::<B::InnerBackend>(classes, &device).reshape([n, 1]);
    softmax(logits, 1).gather(1, idx).reshape([n]).into_data().convert::<f32>().to_vec().expect("f32 data")
}

/// Translates `jobs` (seeds are rows of `images`, in [0, 1]) through f and g exactly as
/// M2m does during training ([`m2m_core::translation::translate`]), and measures each.
/// With `draw`, the Bernoulli acceptance draw follows the translation as in training,
/// so the random stream is the one [`crate::m2m::M2m::translate_batch`] consumes.
pub fn translate_jobs<B, F, G, R>(
    f: &F,
    g: &G,
    images: &Tensor<B, 4>,
    jobs: &[PlannedSlot],
    config: &TranslationConfig,
    draw: bool,
    rng: &mut R,
) -> (Vec<JobResult>, Tensor<B, 4>)
where
    B: AutodiffBackend,
    F: Classifier<B> + AutodiffModule<B>,
    G: Classifier<B> + AutodiffModule<B>,
    R: Rng + ?Sized,
{
    let device = images.device();
    let seeds_idx: Vec<usize> = jobs.iter().map(|p| p.seed).collect();
    let targets: Vec<usize> = jobs.iter().map(|p| p.target).collect();
    let seed_classes: Vec<usize> = jobs.iter().map(|p| p.seed_class).collect();
    let seeds = images.clone().select(0, int_tensor::<B>(&seeds_idx, &device)).detach();
    let f = f.clone().no_grad();
    let g = g.clone().no_grad();
    let g_before = gather_prob::<B>(g.logits(seeds.clone(), Mode::Eval).inner(), &targets);
    let f_before = gather_prob::<B>(f.logits(seeds.clone(), Mode::Eval).inner(), &seed_classes);
    let out = translate(&f, &g, seeds.clone(), &targets, &seed_classes, config, rng);
    let f_after = gather_prob::<B>(f.logits(out.images.clone(), Mode::Eval).inner(), &seed_classes);
    let diff = out.images.clone().inner().sub(seeds.inner());
    let l2: Vec<f32> = diff
        .square()
        .sum_dim(3)
        .sum_dim(2)
        .sum_dim(1)
        .sqrt()
        .reshape([jobs.len()])
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 data");
    let drawn: Vec<Option<bool>> = if draw {
        // The draws training makes after the translation (`accept`), in the same order.
        acceptance_draws(jobs, rng).into_iter().map(Some).collect()
    } else {
        vec![None; jobs.len()]
    };
    let results = (0..jobs.len())
        .map(|i| JobResult {
            g_target_prob_before: g_before[i],
            g_target_prob: out.target_confidence[i],
            f_seed_prob_before: f_before[i],
            f_seed_prob: f_after[i],
            l2: l2[i],
            passes_gamma: (out.target_confidence[i] as f64) >= config.gamma(),
            drawn: drawn[i],
        })
        .collect();
    (results, out.images)
}
