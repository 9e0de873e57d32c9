//! The translation on a tiny model, on the CPU backend: it lowers the objective, stays in
//! [0, 1] and near the seed, its input gradient matches finite differences, and it
//! leaves f and g untouched.

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use m2m_core::classifier::{Classifier, Mode};
use m2m_core::seed::with_seed;
use m2m_core::seed::ChaCha12Rng;
use m2m_core::translation::{objective, translate, RandomStart, TranslationParams};
use rand::SeedableRng;

type B = Autodiff<Flex>;

/// Flatten, linear, tanh, linear: smooth, so finite differences are meaningful.
#[derive(Module, Debug)]
struct Tiny<B: Backend> {
    a: Linear<B>,
    b: Linear<B>,
}

impl<B: Backend> Tiny<B> {
    /// Parameters drawn now (burn initialises lazily), so that under [`with_seed`] they
    /// come from the seed.
    fn new(device: &B::Device) -> Self {
        let tiny = Self { a: LinearConfig::new(2 * 4 * 4, 16).init(device), b: LinearConfig::new(16, 3).init(device) };
        let _ = (tiny.a.weight.val(), tiny.b.weight.val());
        if let (Some(a), Some(b)) = (&tiny.a.bias, &tiny.b.bias) {
            let _ = (a.val(), b.val());
        }
        tiny
    }
}

impl<B: Backend> Classifier<B> for Tiny<B> {
    fn logits(&self, x: Tensor<B, 4>, _mode: Mode) -> Tensor<B, 2> {
        let n = x.dims()[0];
        self.b.forward(self.a.forward(x.reshape([n, 32])).tanh())
    }
}

struct Snapshot(Vec<Vec<f32>>);
impl<B: Backend> ModuleVisitor<B> for Snapshot {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        self.0.push(p.val().into_data().to_vec().unwrap());
    }
}
fn snapshot<M: Module<B>>(m: &M) -> Vec<Vec<f32>> {
    let mut s = Snapshot(Vec::new());
    m.visit(&mut s);
    s.0
}

fn ints(v: &[i64]) -> Tensor<B, 1, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn value(f: &Tiny<B>, g: &Tiny<B>, x: &Tensor<B, 4>, lambda: f64) -> f64 {
    objective(f, g, x.clone(), ints(&[2, 1, 2]), ints(&[0, 0, 1]), lambda).into_scalar() as f64
}

#[test]
fn translation_lowers_the_objective_within_bounds_and_leaves_the_models_alone() {
    let device = Default::default();
    let (f, g, seeds) = with_seed::<B, _>(&device, 1, || {
        let (f, g) = (Tiny::<B>::new(&device), Tiny::<B>::new(&device));
        (f, g, Tensor::<B, 4>::random([3, 2, 4, 4], Distribution::Uniform(0.0, 1.0), &device))
    });
    let (f_before, g_before) = (snapshot(&f), snapshot(&g));
    let config = TranslationParams {
        steps: 10,
        step_size: 0.1,
        lambda: 0.5,
        random_start: RandomStart::PerSample,
        ..Default::default()
    }
    .check()
    .unwrap();
    let start = value(&f, &g, &seeds, config.lambda());
    let out = translate(&f, &g, seeds.clone(), &[2, 1, 2], &[0, 0, 1], &config, &mut ChaCha12Rng::seed_from_u64(0));
    let end = value(&f, &g, &out.images, config.lambda());
    assert!(end < start, "objective {start} -> {end}");

    let x: Vec<f32> = out.images.clone().into_data().to_vec().unwrap();
    assert!(x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // Each image moved at most T * step plus the random start radius (L2, per image).
    let s: Vec<f32> = seeds.into_data().to_vec().unwrap();
    for i in 0..3 {
        let d: f64 = (0..32).map(|j| ((x[i * 32 + j] - s[i * 32 + j]) as f64).powi(2)).sum::<f64>().sqrt();
        assert!(d <= config.steps() as f64 * config.step_size() + config.start_radius() + 1e-5, "image {i} moved {d}");
    }
    assert_eq!(out.target_confidence.len(), 3);
    assert!(out.target_confidence.iter().all(|&q| (0.0..=1.0).contains(&q)));
    assert!(snapshot(&f) == f_before && snapshot(&g) == g_before, "f or g changed");
}

#[test]
fn input_gradient_matches_finite_differences() {
    let device = Default::default();
    let (f, g, x0) = with_seed::<B, _>(&device, 2, || {
        let (f, g) = (Tiny::<B>::new(&device), Tiny::<B>::new(&device));
        (f, g, Tensor::<B, 4>::random([3, 2, 4, 4], Distribution::Uniform(0.2, 0.8), &device))
    });
    let xg = x0.clone().require_grad();
    let loss = objective(&f, &g, xg.clone(), ints(&[2, 1, 2]), ints(&[0, 0, 1]), 0.7);
    let grad: Vec<f32> = xg.grad(&loss.backward()).unwrap().into_data().to_vec().unwrap();
    let base: Vec<f32> = x0.into_data().to_vec().unwrap();
    let eps = 1e-2f32;
    for &k in &[0usize, 7, 33, 60, 95] {
        let shifted = |delta: f32| {
            let mut v = base.clone();
            v[k] += delta;
            Tensor::<B, 4>::from_data(TensorData::new(v, [3, 2, 4, 4]), &device)
        };
        let numeric = (value(&f, &g, &shifted(eps), 0.7) - value(&f, &g, &shifted(-eps), 0.7)) / (2.0 * eps as f64);
        let analytic = grad[k] as f64;
        assert!(
            (numeric - analytic).abs() < 1e-3 + 1e-2 * analytic.abs(),
            "x[{k}]: numeric {numeric} vs analytic {analytic}"
        );
    }
}
