//! M2m for burn-train: the batch hook that replaces over-sampled minority slots with
//! translated majority seeds, and the baseline classifier g it translates through.
//!
//! This layer holds the algorithm on the plugin's side: the generator, the epoch gate and
//! its random stream, the gallery. The `m2m` CLI's loop (`train`) and the burn-train hook
//! (`hook`) both build on it; it imports neither.

pub(crate) mod acceptance;
pub(crate) mod gallery;

use burn::module::AutodiffModule;
use burn::tensor::activation::softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::Tensor;
use m2m_core::classifier::{Classifier, InputNormalization, OnPixels};
use m2m_core::sampling::SamplerKind;
use m2m_core::seed::ChaCha12Rng;
use m2m_core::seed::{stream_rng, SeedStream};
use m2m_core::translation::{
    accept, int_tensor, plan_slots, translate, GenerationStats, PlannedSlot, TranslationConfig,
};
use m2m_core::weighting::Deferred;
use rand::Rng;

/// What M2m did to one batch.
#[derive(Debug, Clone, Default)]
pub struct BatchGeneration {
    /// The slots M2m tried to fill with a translation, each with its seed and target class.
    pub planned: Vec<PlannedSlot>,
    /// g's softmax probability of the target class on each planned slot's translation, in
    /// the order of `planned`.
    pub confidence: Vec<f32>,
    /// Whether each planned slot's translation was accepted (and replaced the slot's
    /// image), in the order of `planned`.
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
    /// How the images M2m is given are normalised (`None`: they are pixels in [0, 1]).
    input: Option<InputNormalization>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend, G: Classifier<B> + AutodiffModule<B>> M2m<B, G> {
    /// `g` is deep-copied (its own running statistics, no shared state with the model
    /// it came from) and frozen (no parameter gradients): it can never alias f. `counts`
    /// are the training images per class, one per logit of g.
    pub fn new(g: &G, counts: Vec<usize>, config: TranslationConfig) -> Self {
        let g = G::from_inner(g.valid()).no_grad();
        Self { g, counts, config, input: None, _backend: std::marker::PhantomData }
    }

    /// Images given to [`Self::translate_batch`] are normalised as `input` says: M2m
    /// translates their pixels and returns normalised images.
    pub fn with_input_normalization(mut self, input: InputNormalization) -> Self {
        self.input = Some(input);
        self
    }

    /// The number of classes (of the training counts and g's logits).
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// The frozen baseline classifier g that translations must convince.
    pub fn g(&self) -> &G {
        &self.g
    }

    /// The translation settings.
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
        let planned = plan_slots(labels, &self.counts, self.config.beta(), self.config.seed_selection(), rng);
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
        let (seeds, config) = (seed_images.detach(), &self.config);
        let out = match &self.input {
            None => translate(&f_frozen, &self.g, seeds, &targets, &seed_classes, config, rng),
            Some(input) => {
                let f = OnPixels { classifier: &f_frozen, normalization: input };
                let g = OnPixels { classifier: &self.g, normalization: input };
                let mut out = translate(&f, &g, input.pixels(seeds), &targets, &seed_classes, config, rng);
                out.images = input.normalize(out.images);
                out
            }
        };
        let accepted = accept(&out.target_confidence, &planned, self.config.gamma(), rng);
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

/// f's probabilities of the target and the seed class on the accepted slots (the
/// reference's `p_g_targ` / `p_g_orig`), read from the logits of the training forward.
/// Summed on the device and read once, at the end of the epoch: a read per batch would
/// wait for the device in the middle of every training step.
#[derive(Debug)]
pub struct FProbabilities<B: Backend> {
    /// `[sum of p(target), sum of p(seed class)]` so far.
    sums: Option<Tensor<B, 1>>,
}

impl<B: Backend> Default for FProbabilities<B> {
    fn default() -> Self {
        Self { sums: None }
    }
}

impl<B: Backend> FProbabilities<B> {
    /// Adds f's probabilities of the target and the seed class on `generation`'s accepted
    /// slots, read from `logits` (`[n, classes]`, f's logits on the translated batch);
    /// nothing when no slot was accepted. Reads nothing back from the device.
    pub fn add(&mut self, logits: &Tensor<B, 2>, generation: &BatchGeneration) {
        let slots: Vec<&PlannedSlot> = generation.accepted_slots().collect();
        if slots.is_empty() {
            return;
        }
        let device = logits.device();
        let k = slots.len();
        let rows = int_tensor::<B>(&slots.iter().map(|p| p.slot).collect::<Vec<_>>(), &device);
        let probs = softmax(logits.clone().detach().select(0, rows), 1);
        // Columns [target, seed class] of each accepted row.
        let columns: Vec<usize> = slots.iter().flat_map(|p| [p.target, p.seed_class]).collect();
        let columns = int_tensor::<B>(&columns, &device).reshape([k, 2]);
        let batch = probs.gather(1, columns).sum_dim(0).reshape([2]);
        self.sums = Some(match self.sums.take() {
            Some(s) => s.add(batch),
            None => batch,
        });
    }

    /// Adds the sums into `stats` (one read).
    pub fn into_stats(self, stats: &mut GenerationStats) {
        if let Some(sums) = self.sums {
            let sums: Vec<f32> = sums.into_data().convert::<f32>().to_vec().expect("f32 data");
            stats.f_target_prob_sum += sums[0] as f64;
            stats.f_seed_prob_sum += sums[1] as f64;
        }
    }
}

/// When M2m translates and with which random numbers: from `from_epoch` (0-based) on,
/// every epoch with its own [`SeedStream::Translation`] generator derived from the run's
/// seed. The `m2m` CLI's loop and the burn-train hook both go through this one gate, so
/// the same seed gives the same translations on either path, resumed or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct M2mSchedule {
    /// The first epoch (0-based) with the class-balanced sampler and translations.
    pub from_epoch: usize,
    /// The run's seed, from which each epoch's translation stream derives.
    pub seed: u64,
}

impl M2mSchedule {
    /// The sampler M2m needs: natural order before `from_epoch`, class-balanced from it on.
    pub fn sampler(&self) -> Deferred<SamplerKind> {
        Deferred::new(SamplerKind::ClassBalanced, self.from_epoch)
    }

    /// The translation state of `epoch`, or `None` before `from_epoch`.
    pub fn epoch(&self, epoch: usize, num_classes: usize) -> Option<EpochTranslations> {
        (epoch >= self.from_epoch).then(|| EpochTranslations {
            epoch,
            rng: stream_rng(self.seed, epoch, SeedStream::Translation),
            stats: GenerationStats::new(num_classes),
        })
    }
}

/// One epoch of M2m: its random stream and what it did so far.
#[derive(Debug)]
pub struct EpochTranslations {
    /// The epoch, 0-based.
    pub epoch: usize,
    rng: ChaCha12Rng,
    /// The translations attempted and accepted so far in this epoch.
    pub stats: GenerationStats,
}

impl EpochTranslations {
    /// [`M2m::translate_batch`] with this epoch's random stream; records the attempts.
    pub fn translate<B, G, F>(
        &mut self,
        m2m: &M2m<B, G>,
        f: &F,
        images: Tensor<B, 4>,
        labels: &[usize],
    ) -> (Tensor<B, 4>, BatchGeneration)
    where
        B: AutodiffBackend,
        G: Classifier<B> + AutodiffModule<B>,
        F: Classifier<B> + AutodiffModule<B>,
    {
        let (images, generation) = m2m.translate_batch(f, images, labels, &mut self.rng);
        self.stats.record(labels.len(), &generation.planned, &generation.confidence, &generation.accepted);
        (images, generation)
    }
}
