//! M2m for burn-train: the batch hook that replaces over-sampled minority slots with
//! translated majority seeds, and the baseline classifier g it translates through.
//!
//! The hook works with any model implementing [`Classifier`]; see
//! `examples/m2m_in_your_project.rs` for adding it to an existing burn-train project.

mod baseline;
pub mod gallery;

use burn::module::AutodiffModule;
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;
use m2m_core::classifier::Classifier;
use m2m_core::translation::{accept, int_tensor, plan_slots, translate, GenerationStats, PlannedSlot, TranslationConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use baseline::{baseline_recipe, load_baseline};

/// What M2m did to one batch.
#[derive(Debug, Clone, Default)]
pub struct BatchGeneration {
    pub planned: Vec<PlannedSlot>,
    pub confidence: Vec<f32>,
    pub accepted: Vec<bool>,
}

impl BatchGeneration {
    /// The planned slots that now hold a translated image.
    pub fn accepted_slots(&self) -> impl Iterator<Item = &PlannedSlot> {
        self.planned.iter().zip(&self.accepted).filter(|(_, &a)| a).map(|(p, _)| p)
    }
}

/// M2m's generator: a frozen baseline classifier g, the training-set class counts and
/// the translation settings.
pub struct M2m<B: AutodiffBackend, G: Classifier<B> + AutodiffModule<B>> {
    g: G,
    counts: Vec<usize>,
    config: TranslationConfig,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend, G: Classifier<B> + AutodiffModule<B>> M2m<B, G> {
    /// `g` is deep-copied (its own running statistics, no shared state with the model
    /// it came from) and frozen (no parameter gradients): it can never alias f.
    pub fn new(g: &G, counts: Vec<usize>, config: TranslationConfig) -> Self {
        assert_eq!(g.num_classes(), counts.len(), "g and the class counts disagree on the number of classes");
        let g = G::from_inner(g.valid()).no_grad();
        Self { g, counts, config, _backend: std::marker::PhantomData }
    }

    pub fn g(&self) -> &G {
        &self.g
    }

    pub fn config(&self) -> &TranslationConfig {
        &self.config
    }

    /// Replaces accepted slots of a class-balanced batch with translated majority seeds.
    /// `f` is the classifier being trained (read in evaluation mode, not modified);
    /// `images` are in [0, 1]; `labels` are the slot labels, which stay valid (a
    /// translated slot keeps its target class). Returns the new images.
    pub fn translate_batch<F: Classifier<B> + AutodiffModule<B>, R: Rng + ?Sized>(
        &self,
        f: &F,
        images: Tensor<B, 4>,
        labels: &[usize],
        rng: &mut R,
    ) -> (Tensor<B, 4>, BatchGeneration) {
        let planned = plan_slots(labels, &self.counts, self.config.beta, rng);
        if planned.is_empty() {
            return (images, BatchGeneration::default());
        }
        let device = images.device();
        let seeds: Vec<usize> = planned.iter().map(|p| p.seed).collect();
        let targets: Vec<usize> = planned.iter().map(|p| p.target).collect();
        let seed_classes: Vec<usize> = planned.iter().map(|p| p.seed_class).collect();
        let seed_images = images.clone().select(0, int_tensor::<B>(&seeds, &device));
        // f without parameter gradients: only the input gradient is needed.
        let f_frozen = f.clone().no_grad();
        let out = translate(&f_frozen, &self.g, seed_images.detach(), &targets, &seed_classes, &self.config, rng);
        let accepted = accept(&out.target_confidence, &planned, self.config.gamma, rng);
        let generation = BatchGeneration { planned, confidence: out.target_confidence, accepted };
        let chosen: Vec<usize> = generation.accepted.iter().enumerate().filter(|(_, &a)| a).map(|(j, _)| j).collect();
        if chosen.is_empty() {
            return (images, generation);
        }
        // One gather: rows 0..n are the batch, rows n.. the accepted translations.
        let n = labels.len();
        let mut index: Vec<usize> = (0..n).collect();
        for (j, &row) in chosen.iter().enumerate() {
            index[generation.planned[row].slot] = n + j;
        }
        let translated = out.images.select(0, int_tensor::<B>(&chosen, &device));
        let mixed = Tensor::cat(vec![images, translated], 0).select(0, int_tensor::<B>(&index, &device));
        (mixed, generation)
    }
}

impl BatchGeneration {
    /// Up to `room` accepted translations of this batch as gallery rows: the seed (a row
    /// of `before`, the batch as sampled) beside the translation (its slot in `after`).
    pub fn gallery_items<B: burn::tensor::backend::Backend>(
        &self,
        before: &Tensor<B, 4>,
        after: &Tensor<B, 4>,
        class_names: &[String],
        room: usize,
    ) -> Vec<gallery::GalleryItem> {
        let chosen: Vec<(&PlannedSlot, f32)> = self
            .planned
            .iter()
            .zip(&self.accepted)
            .zip(&self.confidence)
            .filter(|((_, &a), _)| a)
            .map(|((p, _), &c)| (p, c))
            .take(room)
            .collect();
        if chosen.is_empty() {
            return Vec::new();
        }
        let device = before.device();
        let rows = |t: &Tensor<B, 4>, idx: Vec<usize>| -> Vec<f32> {
            t.clone().select(0, int_tensor::<B>(&idx, &device)).into_data().convert::<f32>().to_vec().expect("f32 data")
        };
        let seeds = rows(before, chosen.iter().map(|(p, _)| p.seed).collect());
        let translated = rows(after, chosen.iter().map(|(p, _)| p.slot).collect());
        let per = seeds.len() / chosen.len();
        let name = |k: usize| class_names.get(k).cloned().unwrap_or_else(|| k.to_string());
        chosen
            .iter()
            .enumerate()
            .map(|(i, (p, conf))| gallery::GalleryItem {
                seed: seeds[i * per..(i + 1) * per].to_vec(),
                translated: translated[i * per..(i + 1) * per].to_vec(),
                lines: vec![format!("{} -> {}", name(p.seed_class), name(p.target)), format!("g on target: {conf:.2}")],
            })
            .collect()
    }
}

/// Adds f's probabilities of the target and the seed class on the accepted slots, read
/// from the logits of the training forward (the reference's `p_g_targ` / `p_g_orig`).
pub fn record_f_probabilities<B: AutodiffBackend>(stats: &mut GenerationStats, logits: &Tensor<B, 2>, generation: &BatchGeneration) {
    let slots: Vec<&PlannedSlot> = generation.accepted_slots().collect();
    if slots.is_empty() {
        return;
    }
    let device = logits.device();
    let rows = int_tensor::<B>(&slots.iter().map(|p| p.slot).collect::<Vec<_>>(), &device);
    let probs = softmax(logits.clone().detach().select(0, rows), 1).into_data().convert::<f32>();
    let probs: Vec<f32> = probs.to_vec().expect("f32 data");
    let c = logits.dims()[1];
    for (i, p) in slots.iter().enumerate() {
        stats.f_target_prob_sum += probs[i * c + p.target] as f64;
        stats.f_seed_prob_sum += probs[i * c + p.seed_class] as f64;
    }
}

/// M2m for a model in your own burn-train project: keep it in a `#[module(skip)]` field
/// of the model and call [`M2mHandle::apply`] at the start of `TrainStep::step`.
///
/// The handle is backend-free (so it fits a skip field), cheap to clone, and gated by
/// the epoch that the training loader publishes through [`M2mHandle::epoch_gate`].
#[derive(Clone)]
pub struct M2mHandle {
    generator: Arc<dyn std::any::Any + Send + Sync>,
    epoch: Arc<AtomicUsize>,
    from_epoch: usize,
    rng: Arc<Mutex<StdRng>>,
}

impl std::fmt::Debug for M2mHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "M2mHandle(from epoch {}, now {})", self.from_epoch, self.epoch.load(Ordering::SeqCst))
    }
}

impl M2mHandle {
    pub fn new<B: AutodiffBackend, G: Classifier<B> + AutodiffModule<B> + Sync + 'static>(generator: M2m<B, G>, from_epoch: usize, seed: u64) -> Self {
        Self {
            generator: Arc::new(generator),
            epoch: Arc::new(AtomicUsize::new(0)),
            from_epoch,
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }

    /// Where the training loader stores the current (0-based) epoch.
    pub fn epoch_gate(&self) -> Arc<AtomicUsize> {
        self.epoch.clone()
    }

    /// From `from_epoch` on, replaces accepted slots of the (class-balanced) batch with
    /// translations; before it, returns `images` unchanged. `F` must be the type g was
    /// given as (usually the model itself).
    pub fn apply<B: AutodiffBackend, F: Classifier<B> + AutodiffModule<B> + 'static>(
        &self,
        f: &F,
        images: Tensor<B, 4>,
        labels: &[usize],
    ) -> (Tensor<B, 4>, Option<BatchGeneration>) {
        if self.epoch.load(Ordering::SeqCst) < self.from_epoch {
            return (images, None);
        }
        let generator = self
            .generator
            .downcast_ref::<M2m<B, F>>()
            .expect("M2mHandle::apply: the model type differs from the type g was built with");
        let mut rng = self.rng.lock().expect("M2m random stream");
        let (images, generation) = generator.translate_batch(f, images, labels, &mut *rng);
        (images, Some(generation))
    }
}
