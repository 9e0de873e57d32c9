//! M2m's major-to-minor translation, exactly as the reference code does it (algorithm.md §4):
//! pick the balanced-batch slots to regenerate, pick a majority seed for each, optimise
//! the seed in input space through a frozen baseline g and the current classifier f,
//! and accept a translation only when g is confident and a Bernoulli draw agrees.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::activation::softmax;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

use crate::classifier::{Classifier, Mode};
use crate::imbalance::acceptance_probability;

/// How the random start `x0 + delta` is drawn (`delta ~ U(-1/2, 1/2)`, then renormalised).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RandomStart {
    /// The reference's `renorm(p=2, dim=1, maxnorm)`: each *channel* across the whole
    /// generation batch is scaled to L2 norm <= radius, so every image gets only about
    /// `radius * sqrt(C / G)` of noise (the default, for fidelity).
    ReferenceChannelwise,
    /// Each image's noise is scaled to L2 norm <= radius (what the paper may have meant).
    PerSample,
    /// No random start: the optimisation starts at the seed itself (the reference's
    /// `generation(..., random_start=False)`; diagnostics and parity checks).
    None,
}

/// How a marked slot's seed is drawn from the batch (algorithm.md §4.2): the reference
/// code and the paper describe two different rules (alinlab/M2m issue #10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SeedSelection {
    /// The reference code (`train.py`, `torch.multinomial` over the batch): a sample j
    /// with weight `1 - beta^max(N_{y_j} - N_k, 0)`, so a class's chance also grows with
    /// its number of samples in the batch. The default.
    #[default]
    PerSample,
    /// The paper (Section 3.2): a seed class k0 among the classes in the batch with weight
    /// `1 - beta^max(N_k0 - N_k, 0)`, then one of its samples in the batch uniformly.
    ClassFirst,
}

/// M2m's translation settings as a user writes them: unchecked, with the paper's CIFAR
/// values as defaults (algorithm.md §1). [`TranslationParams::check`] turns them into a
/// [`TranslationConfig`], the only form the translation code accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TranslationParams {
    /// Seed-weight and acceptance beta in (0, 1): `1 - beta^max(N_k0 - N_k, 0)`.
    pub beta: f64,
    /// Weight of f's seed-class logit in the objective, finite and >= 0.
    pub lambda: f64,
    /// Acceptance threshold on g's softmax for the target class, finite and > 0; values
    /// above 1 reject every translation, which reduces M2m to DRS (an ablation).
    pub gamma: f64,
    /// L2 step size in [0, 1] pixel space, finite and > 0.
    pub step_size: f64,
    /// Number of optimisation steps T, >= 1.
    pub steps: usize,
    /// How the optimisation's starting point is drawn around the seed.
    pub random_start: RandomStart,
    /// L2 radius of the random start (0.5 in the reference), finite and >= 0.
    pub start_radius: f64,
    /// How each slot's seed is drawn (the reference code's rule by default).
    #[serde(default)]
    pub seed_selection: SeedSelection,
}

impl Default for TranslationParams {
    fn default() -> Self {
        Self {
            beta: 0.999,
            lambda: 0.5,
            gamma: 0.9,
            step_size: 0.1,
            steps: 10,
            random_start: RandomStart::ReferenceChannelwise,
            start_radius: 0.5,
            seed_selection: SeedSelection::PerSample,
        }
    }
}

/// A translation setting out of range; one variant per field, so callers can name it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TranslationError {
    /// `beta` (given) is not in (0, 1).
    #[error("must be in (0, 1), got {0}")]
    Beta(f64),
    /// `lambda` (given) is negative or not finite.
    #[error("must be finite and >= 0, got {0}")]
    Lambda(f64),
    /// `gamma` (given) is not a finite positive number.
    #[error("must be finite and > 0 (above 1 accepts nothing), got {0}")]
    Gamma(f64),
    /// `step_size` (given) is not a finite positive number.
    #[error("must be finite and > 0, got {0}")]
    StepSize(f64),
    /// `steps` is 0.
    #[error("must be >= 1")]
    Steps,
    /// `start_radius` (given) is negative or not finite.
    #[error("must be finite and >= 0, got {0}")]
    StartRadius(f64),
}

impl TranslationError {
    /// The name of the field (as in [`TranslationParams`] and in recipes).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Beta(_) => "beta",
            Self::Lambda(_) => "lambda",
            Self::Gamma(_) => "gamma",
            Self::StepSize(_) => "step_size",
            Self::Steps => "steps",
            Self::StartRadius(_) => "start_radius",
        }
    }
}

impl TranslationParams {
    /// Sets `beta`, the seed-weight and acceptance base (checked by [`Self::check`]).
    pub fn with_beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }
    /// Sets `lambda`, the weight of f's seed-class logit in the objective.
    pub fn with_lambda(mut self, lambda: f64) -> Self {
        self.lambda = lambda;
        self
    }
    /// Sets `gamma`, the acceptance threshold on g's target-class softmax.
    pub fn with_gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }
    /// Sets `step_size`, the L2 length of each optimisation step in pixel space.
    pub fn with_step_size(mut self, step_size: f64) -> Self {
        self.step_size = step_size;
        self
    }
    /// Sets `steps`, the number of optimisation steps T.
    pub fn with_steps(mut self, steps: usize) -> Self {
        self.steps = steps;
        self
    }
    /// Sets how the random start is drawn.
    pub fn with_random_start(mut self, random_start: RandomStart) -> Self {
        self.random_start = random_start;
        self
    }
    /// Sets `start_radius`, the L2 radius of the random start.
    pub fn with_start_radius(mut self, start_radius: f64) -> Self {
        self.start_radius = start_radius;
        self
    }
    /// Sets how each slot's seed is drawn ([`SeedSelection`]).
    pub fn with_seed_selection(mut self, seed_selection: SeedSelection) -> Self {
        self.seed_selection = seed_selection;
        self
    }

    /// Checks every field, in declaration order; the first one out of range is the error.
    ///
    /// ```
    /// use m2m_core::translation::{RandomStart, TranslationError, TranslationParams};
    ///
    /// // The paper's CIFAR settings with fewer steps and a per-image random start.
    /// let config = TranslationParams::default()
    ///     .with_steps(5)
    ///     .with_random_start(RandomStart::PerSample)
    ///     .check()
    ///     .expect("valid settings");
    /// assert_eq!(config.steps(), 5);
    /// assert_eq!(config.beta(), 0.999);
    ///
    /// // beta must lie in (0, 1): 1 is refused, and the error names the field.
    /// let err = TranslationParams::default().with_beta(1.0).check().unwrap_err();
    /// assert_eq!(err, TranslationError::Beta(1.0));
    /// assert_eq!(err.field(), "beta");
    /// ```
    pub fn check(self) -> Result<TranslationConfig, TranslationError> {
        let p = self;
        if !(p.beta.is_finite() && p.beta > 0.0 && p.beta < 1.0) {
            return Err(TranslationError::Beta(p.beta));
        }
        if !(p.lambda.is_finite() && p.lambda >= 0.0) {
            return Err(TranslationError::Lambda(p.lambda));
        }
        if !(p.gamma.is_finite() && p.gamma > 0.0) {
            return Err(TranslationError::Gamma(p.gamma));
        }
        if !(p.step_size.is_finite() && p.step_size > 0.0) {
            return Err(TranslationError::StepSize(p.step_size));
        }
        if p.steps == 0 {
            return Err(TranslationError::Steps);
        }
        if !(p.start_radius.is_finite() && p.start_radius >= 0.0) {
            return Err(TranslationError::StartRadius(p.start_radius));
        }
        Ok(TranslationConfig(p))
    }
}

/// Checked translation settings (build them with [`TranslationParams::check`]); the
/// default is the paper's. Deserialising checks too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TranslationParams", into = "TranslationParams")]
pub struct TranslationConfig(TranslationParams);

impl TryFrom<TranslationParams> for TranslationConfig {
    type Error = TranslationError;
    fn try_from(p: TranslationParams) -> Result<Self, TranslationError> {
        p.check()
    }
}

impl From<TranslationConfig> for TranslationParams {
    fn from(c: TranslationConfig) -> Self {
        c.0
    }
}

impl Default for TranslationConfig {
    fn default() -> Self {
        TranslationParams::default().check().expect("the paper's settings are valid")
    }
}

impl TranslationConfig {
    /// Seed-weight and acceptance beta, in (0, 1).
    pub fn beta(&self) -> f64 {
        self.0.beta
    }
    /// Weight of f's seed-class logit in the objective, >= 0.
    pub fn lambda(&self) -> f64 {
        self.0.lambda
    }
    /// Acceptance threshold on g's softmax for the target class, > 0.
    pub fn gamma(&self) -> f64 {
        self.0.gamma
    }
    /// L2 step size in [0, 1] pixel space, > 0.
    pub fn step_size(&self) -> f64 {
        self.0.step_size
    }
    /// Number of optimisation steps T, >= 1.
    pub fn steps(&self) -> usize {
        self.0.steps
    }
    /// How the random start is drawn.
    pub fn random_start(&self) -> RandomStart {
        self.0.random_start
    }
    /// How each slot's seed is drawn.
    pub fn seed_selection(&self) -> SeedSelection {
        self.0.seed_selection
    }
    /// L2 radius of the random start, >= 0.
    pub fn start_radius(&self) -> f64 {
        self.0.start_radius
    }
    /// The settings as plain values, to change some and check again.
    pub fn params(&self) -> TranslationParams {
        self.0.clone()
    }
}

/// A batch slot chosen for regeneration, with its seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedSlot {
    /// Index of the slot in the batch; the translated image replaces it when accepted.
    pub slot: usize,
    /// The slot's class k, which the translation aims at.
    pub target: usize,
    /// Index (in the same batch) of the seed image.
    pub seed: usize,
    /// The seed's class k0.
    pub seed_class: usize,
    /// `1 - beta^max(N_k0 - N_k, 0)`: the seed's weight and the Bernoulli acceptance probability.
    pub p_accept: f64,
}

/// Steps A and B of the reference: for each slot `i`, regenerate with probability
/// `1 - N_{y_i}/N_max`; draw a seed `j` from the batch by `selection` ([`SeedSelection`]),
/// with weight `1 - beta^max(N_{y_j} - N_k, 0)` per sample or per class. Slots whose
/// weights are all zero (no element of a strictly larger class in the batch) keep their
/// real sample and are not returned. Both rules draw the same two numbers per slot from
/// `rng`, so they mark the same slots and differ only in the seeds.
pub fn plan_slots<R: Rng + ?Sized>(
    labels: &[usize],
    counts: &[usize],
    beta: f64,
    selection: SeedSelection,
    rng: &mut R,
) -> Vec<PlannedSlot> {
    let n_max = counts.iter().copied().max().unwrap_or(0);
    if n_max == 0 {
        return Vec::new();
    }
    let mut planned = Vec::new();
    for (slot, &target) in labels.iter().enumerate() {
        let keep = counts[target] as f64 / n_max as f64;
        if rng.random_bool(keep.clamp(0.0, 1.0)) {
            continue;
        }
        let weight = |class: usize| acceptance_probability(counts, beta, class, target);
        // One uniform draw in [0, 1) per marked slot, whichever the rule.
        let draw = |total: f64, rng: &mut R| rng.random::<f64>() * total;
        let seed = match selection {
            SeedSelection::PerSample => {
                let weights: Vec<f64> = labels.iter().map(|&y| weight(y)).collect();
                let total: f64 = weights.iter().sum();
                if total <= 0.0 {
                    continue;
                }
                pick(&weights, draw(total, rng)).0
            }
            SeedSelection::ClassFirst => {
                let classes: Vec<usize> = (0..counts.len()).filter(|c| labels.contains(c)).collect();
                let weights: Vec<f64> = classes.iter().map(|&c| weight(c)).collect();
                let total: f64 = weights.iter().sum();
                if total <= 0.0 {
                    continue;
                }
                let (i, within) = pick(&weights, draw(total, rng));
                // The rest of the same draw picks the sample, uniformly within the class.
                let members: Vec<usize> = (0..labels.len()).filter(|&j| labels[j] == classes[i]).collect();
                members[((within * members.len() as f64) as usize).min(members.len() - 1)]
            }
        };
        planned.push(PlannedSlot { slot, target, seed, seed_class: labels[seed], p_accept: weight(labels[seed]) });
    }
    planned
}

/// The index a point `u` in `[0, sum of weights)` falls on, as `torch.multinomial` on
/// unnormalised weights picks it (a cumulative sum), and where in that index's share `u`
/// lies, in `[0, 1)`. Zero weights are never picked.
fn pick(weights: &[f64], u: f64) -> (usize, f64) {
    let mut acc = 0.0;
    for (j, &w) in weights.iter().enumerate() {
        if u < acc + w && w > 0.0 {
            return (j, (u - acc) / w);
        }
        acc += w;
    }
    // Rounding at the top end: the last element with weight.
    (weights.iter().rposition(|&w| w > 0.0).expect("a positive weight"), 1.0 - f64::EPSILON)
}

/// The random start noise `[g, c, h, w]` (host side, from `rng`); all zeros, and nothing
/// drawn, for [`RandomStart::None`].
pub fn start_noise<R: Rng + ?Sized>(shape: [usize; 4], rule: RandomStart, radius: f64, rng: &mut R) -> Vec<f32> {
    let [g, c, h, w] = shape;
    if rule == RandomStart::None {
        return vec![0.0; g * c * h * w];
    }
    let mut delta: Vec<f32> = (0..g * c * h * w).map(|_| rng.random::<f32>() - 0.5).collect();
    let plane = h * w;
    let scale_group = |delta: &mut Vec<f32>, idx: &dyn Fn(usize) -> Vec<std::ops::Range<usize>>, n: usize| {
        for group in 0..n {
            let ranges = idx(group);
            let norm: f64 = ranges
                .iter()
                .flat_map(|r| delta[r.clone()].iter())
                .map(|&v| (v as f64) * (v as f64))
                .sum::<f64>()
                .sqrt();
            if norm > radius {
                // torch.renorm scales by maxnorm / (norm + 1e-7)
                let s = (radius / (norm + 1e-7)) as f32;
                for r in ranges {
                    for v in &mut delta[r] {
                        *v *= s;
                    }
                }
            }
        }
    };
    match rule {
        RandomStart::ReferenceChannelwise => {
            let idx = |ch: usize| (0..g).map(|i| (i * c + ch) * plane..(i * c + ch + 1) * plane).collect();
            scale_group(&mut delta, &idx, c);
        }
        RandomStart::PerSample => {
            let idx = |i: usize| std::iter::once(i * c * plane..(i + 1) * c * plane).collect();
            scale_group(&mut delta, &idx, g);
        }
        RandomStart::None => unreachable!("returned above"),
    }
    delta
}

/// Translated images and g's confidence in their targets.
pub struct Translation<B: AutodiffBackend> {
    /// `[g, c, h, w]` in [0, 1], detached.
    pub images: Tensor<B, 4>,
    /// `softmax(g(x*))[k]` per row.
    pub target_confidence: Vec<f32>,
}

/// Class labels or row indices held on the host as a 1-D integer tensor.
pub fn int_tensor<B: burn::tensor::backend::Backend>(values: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(values.iter().map(|&v| v as i64).collect::<Vec<_>>(), [values.len()]), device)
}

/// The objective minimised by the translation (algorithm.md §4.3):
/// `CE_mean(g(x), k) + lambda * mean_r f(x)[r, k0_r]`, both networks in eval mode.
pub fn objective<B: AutodiffBackend, F: Classifier<B>, G: Classifier<B>>(
    f: &F,
    g: &G,
    x: Tensor<B, 4>,
    targets: Tensor<B, 1, Int>,
    seed_classes: Tensor<B, 1, Int>,
    lambda: f64,
) -> Tensor<B, 1> {
    let n = targets.dims()[0];
    let ce = CrossEntropyLossConfig::new().init(&x.device()).forward(g.logits(x.clone(), Mode::Eval), targets);
    let seed_logit = f.logits(x, Mode::Eval).gather(1, seed_classes.reshape([n, 1])).mean();
    ce.add(seed_logit.mul_scalar(lambda))
}

/// Step C of the reference: starting from `seeds + delta`, take `steps` normalised
/// gradient steps on [`objective`] with respect to the input only, clamping to [0, 1]
/// after each. f and g are only read: evaluation mode (also inside
/// [`eval_scope`](crate::classifier::eval_scope)), no parameter gradients are used.
pub fn translate<B: AutodiffBackend, F: Classifier<B>, G: Classifier<B>, R: Rng + ?Sized>(
    f: &F,
    g: &G,
    seeds: Tensor<B, 4>,
    targets: &[usize],
    seed_classes: &[usize],
    config: &TranslationConfig,
    rng: &mut R,
) -> Translation<B> {
    crate::classifier::eval_scope(|| translate_in_scope(f, g, seeds, targets, seed_classes, config, rng))
}

fn translate_in_scope<B: AutodiffBackend, F: Classifier<B>, G: Classifier<B>, R: Rng + ?Sized>(
    f: &F,
    g: &G,
    seeds: Tensor<B, 4>,
    targets: &[usize],
    seed_classes: &[usize],
    config: &TranslationConfig,
    rng: &mut R,
) -> Translation<B> {
    let device = seeds.device();
    let shape = seeds.dims();
    let mut x = if config.random_start() == RandomStart::None {
        seeds.inner()
    } else {
        let delta = start_noise(shape, config.random_start(), config.start_radius(), rng);
        let delta = Tensor::<B::InnerBackend, 4>::from_data(TensorData::new(delta, shape), &device);
        seeds.inner().add(delta).clamp(0.0, 1.0)
    };
    let k = int_tensor::<B>(targets, &device);
    let k0 = int_tensor::<B>(seed_classes, &device);
    for _ in 0..config.steps() {
        let xg = Tensor::<B, 4>::from_inner(x.clone()).require_grad();
        let loss = objective(f, g, xg.clone(), k.clone(), k0.clone(), config.lambda());
        let grads = loss.backward();
        let grad = xg.grad(&grads).expect("the input requires a gradient");
        let norm = grad.clone().square().sum_dim(3).sum_dim(2).sum_dim(1).sqrt().add_scalar(1e-10);
        x = x.sub(grad.div(norm).mul_scalar(config.step_size())).clamp(0.0, 1.0);
    }
    let images = Tensor::<B, 4>::from_inner(x);
    let probs = softmax(g.logits(images.clone(), Mode::Eval).inner(), 1);
    let conf = probs.gather(1, k.inner().reshape([targets.len(), 1])).reshape([targets.len()]);
    let target_confidence = conf.into_data().convert::<f32>().to_vec().expect("f32 data");
    Translation { images, target_confidence }
}

/// The Bernoulli(`p_accept`) draws of step C3, one per row in order.
pub fn acceptance_draws<R: Rng + ?Sized>(planned: &[PlannedSlot], rng: &mut R) -> Vec<bool> {
    planned.iter().map(|p| rng.random_bool(p.p_accept.clamp(0.0, 1.0))).collect()
}

/// Step C3: accepted iff `confidence >= gamma` and a Bernoulli(`p_accept`) draw succeeds.
pub fn accept<R: Rng + ?Sized>(confidence: &[f32], planned: &[PlannedSlot], gamma: f64, rng: &mut R) -> Vec<bool> {
    // Drawn for every row, whatever g said, so the random stream does not depend on g.
    let lucky = acceptance_draws(planned, rng);
    confidence.iter().zip(lucky).map(|(&q, lucky)| (q as f64) >= gamma && lucky).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imbalance::{class_counts, expected_generated_slots, ImbalanceProfile};
    use crate::seed::ChaCha12Rng;
    use rand::SeedableRng;

    #[test]
    fn every_field_is_checked_and_named() {
        let ok = TranslationParams::default();
        let cases: Vec<(TranslationParams, &str)> = vec![
            (ok.clone().with_beta(1.0), "beta"),
            (ok.clone().with_beta(f64::NAN), "beta"),
            (ok.clone().with_lambda(-0.1), "lambda"),
            (ok.clone().with_gamma(0.0), "gamma"),
            (ok.clone().with_gamma(f64::INFINITY), "gamma"),
            (ok.clone().with_step_size(0.0), "step_size"),
            (ok.clone().with_steps(0), "steps"),
            (ok.clone().with_start_radius(f64::INFINITY), "start_radius"),
        ];
        for (p, field) in cases {
            assert_eq!(p.clone().check().unwrap_err().field(), field, "{p:?}");
        }
        let c = ok.with_gamma(1.0).with_steps(3).check().unwrap();
        assert_eq!((c.gamma(), c.steps(), c.beta()), (1.0, 3, 0.999));
        assert_eq!(TranslationConfig::default().params(), TranslationParams::default());
    }

    #[test]
    fn planned_slots_follow_the_generation_probability() {
        let counts = class_counts(5000, 10, 100.0, ImbalanceProfile::Exponential);
        // A class-balanced batch: 100 slots per class.
        let labels: Vec<usize> = (0..1000).map(|i| i % 10).collect();
        let mut rng = ChaCha12Rng::seed_from_u64(0);
        let mut planned = 0usize;
        let rounds = 50;
        for _ in 0..rounds {
            let p = plan_slots(&labels, &counts, 0.999, SeedSelection::PerSample, &mut rng);
            assert!(p.iter().all(|s| s.target != 0), "class 0 is never regenerated");
            assert!(p.iter().all(|s| counts[s.seed_class] > counts[s.target]), "seeds come from larger classes");
            assert!(p.iter().all(|s| labels[s.seed] == s.seed_class && labels[s.slot] == s.target));
            planned += p.len();
        }
        let expected = expected_generated_slots(&counts, 1000) * rounds as f64;
        assert!((planned as f64 - expected).abs() / expected < 0.02, "{planned} vs {expected}");
    }

    #[test]
    fn seeds_are_drawn_with_the_acceptance_weights() {
        // Target class 2 (N=10); candidates class 0 (N=1000) and class 1 (N=20).
        let counts = vec![1000, 20, 10];
        let labels = vec![0, 1, 2];
        let beta: f64 = 0.99;
        let w0 = 1.0 - beta.powi(990);
        let w1 = 1.0 - beta.powi(10);
        let mut rng = ChaCha12Rng::seed_from_u64(3);
        let (mut from0, mut total) = (0usize, 0usize);
        for _ in 0..20000 {
            for s in
                plan_slots(&labels, &counts, beta, SeedSelection::PerSample, &mut rng).iter().filter(|s| s.slot == 2)
            {
                total += 1;
                if s.seed == 0 {
                    from0 += 1;
                    assert!((s.p_accept - w0).abs() < 1e-12);
                } else {
                    assert_eq!(s.seed, 1);
                    assert!((s.p_accept - w1).abs() < 1e-12);
                }
            }
        }
        let frac = from0 as f64 / total as f64;
        let expect = w0 / (w0 + w1);
        assert!((frac - expect).abs() < 0.01, "{frac} vs {expect}");
    }

    #[test]
    fn class_first_changes_which_class_seeds_and_nothing_else() {
        use rand::RngExt;
        // Slots of class 2 (N=10); 90 seeds of class 0 (N=5000) and 10 of class 1 (N=4000)
        // in the batch, both classes weighing about 1 at beta 0.999.
        let counts = vec![5000, 4000, 10];
        let labels: Vec<usize> = (0..120)
            .map(|i| {
                if i < 90 {
                    0
                } else if i < 100 {
                    1
                } else {
                    2
                }
            })
            .collect();
        let (mut per_sample, mut class_first) = (Vec::new(), Vec::new());
        for round in 0..200 {
            let mut a = ChaCha12Rng::seed_from_u64(round);
            let mut b = ChaCha12Rng::seed_from_u64(round);
            per_sample.extend(plan_slots(&labels, &counts, 0.999, SeedSelection::PerSample, &mut a));
            class_first.extend(plan_slots(&labels, &counts, 0.999, SeedSelection::ClassFirst, &mut b));
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "both rules draw the same numbers");
        }
        // The same slots and targets, each seed's weight its class's.
        let slots = |p: &[PlannedSlot]| p.iter().map(|s| (s.slot, s.target)).collect::<Vec<_>>();
        assert_eq!(slots(&per_sample), slots(&class_first));
        for s in per_sample.iter().chain(&class_first) {
            assert_eq!(labels[s.seed], s.seed_class);
            assert_eq!(s.p_accept, acceptance_probability(&counts, 0.999, s.seed_class, s.target));
        }
        // For class-2 slots: per sample, class 1 seeds about 10% (its share of the batch,
        // times its weight); class first, about half (its weight among the two classes).
        let share = |p: &[PlannedSlot]| {
            let minority: Vec<&PlannedSlot> = p.iter().filter(|s| s.target == 2).collect();
            minority.iter().filter(|s| s.seed_class == 1).count() as f64 / minority.len() as f64
        };
        let (w0, w1) = (1.0 - 0.999f64.powi(4990), 1.0 - 0.999f64.powi(3990));
        let (expect_sample, expect_class) = (10.0 * w1 / (90.0 * w0 + 10.0 * w1), w1 / (w0 + w1));
        assert!(per_sample.len() > 3000, "{}", per_sample.len());
        assert!((share(&per_sample) - expect_sample).abs() < 0.02, "{} vs {expect_sample}", share(&per_sample));
        assert!((share(&class_first) - expect_class).abs() < 0.03, "{} vs {expect_class}", share(&class_first));
        // Within class 1, every one of its 10 samples seeds.
        let used: std::collections::BTreeSet<usize> =
            class_first.iter().filter(|s| s.seed_class == 1).map(|s| s.seed).collect();
        assert_eq!(used, (90..100).collect());
    }

    #[test]
    fn rows_without_a_larger_class_keep_their_sample() {
        let counts = vec![100, 10];
        // Only minority elements: no seed can be found.
        assert!(plan_slots(&[1, 1, 1], &counts, 0.999, SeedSelection::PerSample, &mut ChaCha12Rng::seed_from_u64(1))
            .is_empty());
    }

    #[test]
    fn random_start_rules() {
        let mut rng = ChaCha12Rng::seed_from_u64(2);
        let (g, c, h, w) = (8, 3, 4, 4);
        let d = start_noise([g, c, h, w], RandomStart::ReferenceChannelwise, 0.5, &mut rng);
        for ch in 0..c {
            let n: f64 = (0..g)
                .flat_map(|i| d[(i * c + ch) * 16..(i * c + ch + 1) * 16].iter())
                .map(|&v| (v * v) as f64)
                .sum::<f64>()
                .sqrt();
            assert!(n <= 0.5 + 1e-5, "channel {ch}: {n}");
        }
        let d = start_noise([g, c, h, w], RandomStart::PerSample, 0.5, &mut rng);
        for i in 0..g {
            let n: f64 = d[i * 48..(i + 1) * 48].iter().map(|&v| (v * v) as f64).sum::<f64>().sqrt();
            assert!(n <= 0.5 + 1e-5 && n > 0.45, "image {i}: {n}");
        }
    }

    #[test]
    fn acceptance_needs_confidence_and_luck() {
        let p = |p_accept| PlannedSlot { slot: 0, target: 1, seed: 0, seed_class: 0, p_accept };
        let mut rng = ChaCha12Rng::seed_from_u64(0);
        assert_eq!(accept(&[0.95, 0.5, 0.95], &[p(1.0), p(1.0), p(0.0)], 0.9, &mut rng), vec![true, false, false]);
        // gamma above 1 rejects everything (M2m reduces to DRS).
        assert_eq!(accept(&[1.0, 1.0], &[p(1.0), p(1.0)], 1.01, &mut rng), vec![false, false]);
    }
}

/// What M2m did during an epoch (the reference's `success.npy` plus its log columns).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    /// Batch slots seen in M2m batches.
    pub slots: u64,
    /// Translations attempted, per target class.
    pub attempts: Vec<u64>,
    /// Translations accepted, per target class.
    pub accepted: Vec<u64>,
    /// Sum of g's softmax on the target over all attempts.
    pub g_confidence_sum: f64,
    /// Sum of f's softmax on the target class over accepted samples (in the train step).
    pub f_target_prob_sum: f64,
    /// Sum of f's softmax on the seed class over accepted samples (in the train step).
    pub f_seed_prob_sum: f64,
}

impl GenerationStats {
    /// Empty statistics for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self { attempts: vec![0; num_classes], accepted: vec![0; num_classes], ..Default::default() }
    }

    /// Translations attempted, over all target classes.
    pub fn total_attempts(&self) -> u64 {
        self.attempts.iter().sum()
    }

    /// Adds another epoch's (or run's) statistics of the same classes.
    pub fn merge(&mut self, other: &GenerationStats) {
        assert_eq!(self.attempts.len(), other.attempts.len(), "statistics of different class counts");
        self.slots += other.slots;
        self.attempts.iter_mut().zip(&other.attempts).for_each(|(x, y)| *x += y);
        self.accepted.iter_mut().zip(&other.accepted).for_each(|(x, y)| *x += y);
        self.g_confidence_sum += other.g_confidence_sum;
        self.f_target_prob_sum += other.f_target_prob_sum;
        self.f_seed_prob_sum += other.f_seed_prob_sum;
    }

    /// Translations accepted, over all target classes.
    pub fn total_accepted(&self) -> u64 {
        self.accepted.iter().sum()
    }

    /// Accepted / attempted over all classes; `None` without attempts.
    pub fn acceptance_rate(&self) -> Option<f64> {
        let a = self.total_attempts();
        (a > 0).then(|| self.total_accepted() as f64 / a as f64)
    }

    /// Per class accepted / attempted; `None` for classes never attempted.
    pub fn acceptance_rate_per_class(&self) -> Vec<Option<f64>> {
        self.attempts.iter().zip(&self.accepted).map(|(&t, &a)| (t > 0).then(|| a as f64 / t as f64)).collect()
    }

    /// Mean of g's softmax on the target over all attempts; `None` without attempts.
    pub fn mean_g_confidence(&self) -> Option<f64> {
        let a = self.total_attempts();
        (a > 0).then(|| self.g_confidence_sum / a as f64)
    }

    /// Mean of f's softmax on the target class over accepted samples; `None` when none was accepted.
    pub fn mean_f_target_prob(&self) -> Option<f64> {
        let a = self.total_accepted();
        (a > 0).then(|| self.f_target_prob_sum / a as f64)
    }

    /// Mean of f's softmax on the seed class over accepted samples; `None` when none was accepted.
    pub fn mean_f_seed_prob(&self) -> Option<f64> {
        let a = self.total_accepted();
        (a > 0).then(|| self.f_seed_prob_sum / a as f64)
    }

    /// Records one batch's attempts and acceptances.
    pub fn record(&mut self, slots: usize, planned: &[PlannedSlot], confidence: &[f32], accepted: &[bool]) {
        self.slots += slots as u64;
        for ((p, &q), &ok) in planned.iter().zip(confidence).zip(accepted) {
            self.attempts[p.target] += 1;
            self.g_confidence_sum += q as f64;
            if ok {
                self.accepted[p.target] += 1;
            }
        }
    }
}
