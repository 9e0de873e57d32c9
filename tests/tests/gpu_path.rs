//! The GPU path, run for real: burn's CubeCL backends against the CPU backend (Flex with
//! our kernels) on the same weights and inputs. On wgpu with burn's fusion (what
//! `--backend wgpu` trains on) and without it, so that a difference caused by fusion is
//! named as such (`wgpu::` against `wgpu_unfused::`); on CUDA when built with `--features
//! cuda` on a GPU machine (scripts/gpu-check.sh). Sizes are chosen for a software GPU
//! (Mesa's lavapipe in CI): ResNet-32 on 4 images of 3x16x16, the small CNN on 4 of
//! 1x16x16, batches of 16 for M2m.
//!
//! A backend that cannot start prints why and its tests check nothing, unless
//! `M2M_REQUIRE_GPU` names it (`wgpu,wgpu_unfused`: scripts/test.sh sets it after
//! installing lavapipe; `cuda`: scripts/gpu-check.sh), when they fail instead.
//! `M2M_TEST_WGPU` picks the adapter as `--backend` does (`wgpu`, `wgpu:cpu`, ...).
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param, RunningState};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::hook::check_eval_mode;
use m2m_burn_plugin::m2m::M2m;
use m2m_burn_plugin::model::{load_classifier, save_classifier, Architecture, BatchNorm2d, ModelSpec, Net, Then};
use m2m_burn_plugin::parity::{model_from_bytes, relative_error, weights_to_bytes};
use m2m_core::classifier::{Classifier, Mode};
use m2m_core::loss::{weight_tensor, ClassLoss, LossKind, WeightedMean};
use m2m_core::seed::ChaCha12Rng;
use m2m_core::translation::{accept, int_tensor, plan_slots, translate, TranslationParams};
use rand::SeedableRng;

/// Relative L2 error allowed against Flex: forward values (logits, BatchNorm outputs,
/// running statistics, losses), and gradients (whose sums run in other orders on a GPU).
const FORWARD: f64 = 1e-4;
const GRADIENT: f64 = 1e-3;

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().expect("f32 values")
}

/// Checks one comparison and prints it (`--nocapture` shows every error measured).
fn assert_close(what: &str, actual: &[f32], expected: &[f32], tolerance: f64) {
    let e = relative_error(actual, expected);
    eprintln!("{what}: relative error {e:.3e} (tolerance {tolerance:.0e})");
    assert!(e <= tolerance, "{what}: relative error {e:.3e} > {tolerance:.0e}");
}

/// Pixels in [0, 1] drawn from a seed, the same on every backend.
fn pixels(n: usize, seed: u64) -> Vec<f32> {
    let t = m2m_tests::random::<burn::backend::Flex, 1>(
        [n],
        burn::tensor::Distribution::Uniform(0.0, 1.0),
        seed,
        &Default::default(),
    );
    host(t)
}

fn tensor<B: Backend, const D: usize>(values: &[f32], shape: [usize; D], device: &B::Device) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values.to_vec(), shape), device)
}

fn spec(architecture: Architecture, channels: usize, classes: usize) -> ModelSpec {
    ModelSpec {
        architecture,
        cosine_head: false,
        in_channels: channels,
        num_classes: classes,
        mean: vec![0.45; channels],
        std: vec![0.25; channels],
    }
}

/// The same network on backend `B` as `reference` on the CPU, weights moved as bytes.
fn same_net<B: Backend>(spec: &ModelSpec, reference: &Net<Cpu>, device: &B::Device) -> Net<B> {
    model_from_bytes(spec, &weights_to_bytes(reference), device).expect("weights load on the other backend")
}

/// Every parameter gradient of `model`, in visiting order.
fn parameter_gradients<B: AutodiffBackend>(model: &Net<B>, grads: &B::Gradients) -> Vec<Vec<f32>> {
    struct Grads<'a, B: AutodiffBackend>(&'a B::Gradients, Vec<Vec<f32>>);
    impl<B: AutodiffBackend> ModuleVisitor<B> for Grads<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.1.push(param.grad(self.0).map(host).unwrap_or_default());
        }
    }
    let mut v = Grads::<B>(grads, Vec::new());
    model.visit(&mut v);
    v.1
}

/// What one training-mode pass and one evaluation-mode read compute.
struct Pass {
    logits_train: Vec<f32>,
    input_grad: Vec<f32>,
    parameter_grads: Vec<Vec<f32>>,
    /// Parameters and BatchNorm running statistics after the pass (the statistics moved).
    state: Vec<Vec<f32>>,
    /// Evaluation-mode logits after the training pass (its running statistics).
    logits_eval: Vec<f32>,
}

fn pass<B: AutodiffBackend>(
    model: &Net<B>,
    x: &[f32],
    shape: [usize; 4],
    labels: &[usize],
    device: &B::Device,
) -> Pass {
    let x = tensor::<B, 4>(x, shape, device).require_grad();
    let logits = model.logits(x.clone(), Mode::Train);
    let loss =
        ClassLoss::<B>::new(LossKind::CrossEntropy, WeightedMean::BatchSize, &[1; 10][..model.num_classes()], device)
            .forward(logits.clone(), int_tensor::<B>(labels, device), None);
    let grads = loss.backward();
    Pass {
        logits_train: host(logits.inner()),
        input_grad: host(x.grad(&grads).expect("input gradient")),
        parameter_grads: parameter_gradients(model, &grads),
        state: parameters(model),
        logits_eval: host(model.valid().logits(x.inner(), Mode::Eval)),
    }
}

/// ResNet-32 and the small CNN: training-mode logits, the input gradient and every
/// weight gradient of a cross-entropy loss, and evaluation-mode logits after that pass.
fn models<G: AutodiffBackend>(device: &G::Device) {
    for (s, shape) in
        [(spec(Architecture::ResNet32, 3, 10), [4, 3, 16, 16]), (spec(Architecture::SmallCnn, 1, 10), [4, 1, 16, 16])]
    {
        let cpu = Default::default();
        let reference: Net<Cpu> = s.init_seeded(11, &cpu);
        let gpu: Net<G> = same_net(&s, &reference, device);
        let x = pixels(shape.iter().product(), 12);
        let labels = [0, 3, 7, 9];
        let (a, b) = (pass(&gpu, &x, shape, &labels, device), pass(&reference, &x, shape, &labels, &cpu));
        let what = format!("{:?}", s.architecture);
        assert_close(&format!("{what}: logits (training mode)"), &a.logits_train, &b.logits_train, FORWARD);
        assert_close(&format!("{what}: input gradient"), &a.input_grad, &b.input_grad, GRADIENT);
        assert_eq!(a.parameter_grads.len(), b.parameter_grads.len());
        for (i, (ga, gb)) in a.parameter_grads.iter().zip(&b.parameter_grads).enumerate() {
            // BatchNorm's running statistics are visited too; they have no gradient.
            assert_eq!(ga.is_empty(), gb.is_empty(), "{what}: parameter {i} has a gradient on one backend only");
            assert_close(&format!("{what}: gradient of parameter {i}"), ga, gb, GRADIENT);
        }
        for (i, (va, vb)) in a.state.iter().zip(&b.state).enumerate() {
            assert_close(&format!("{what}: parameter or running statistic {i} after the pass"), va, vb, FORWARD);
        }
        assert!(b.parameter_grads.iter().filter(|g| !g.is_empty()).count() >= 3, "{what}: gradients compared");
        assert_close(&format!("{what}: logits (evaluation mode)"), &a.logits_eval, &b.logits_eval, FORWARD);
    }
}

/// A BatchNorm layer with these parameters and running statistics.
fn batch_norm_layer<B: Backend>(c: usize, device: &B::Device) -> BatchNorm2d<B> {
    let f = |k: f32, o: f32| (0..c).map(|i| o + k * (1.0 + (i as f32 * 0.37).sin())).collect::<Vec<_>>();
    let t = |v: Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), device);
    let mut bn = BatchNorm2d::new(c, device);
    bn.gamma = Param::from_tensor(t(f(0.8, 0.0)));
    bn.beta = Param::from_tensor(t(f(0.3, -0.2)));
    bn.running_mean = RunningState::new(t(f(0.5, 0.0)));
    bn.running_var = RunningState::new(t(f(1.5, 0.1)));
    bn
}

/// One step of a BatchNorm layer: output, input, gamma, beta and residual gradients, and
/// the running statistics after it.
fn bn_step<B: AutodiffBackend>(
    bn: &BatchNorm2d<B>,
    x: &[f32],
    r: &[f32],
    shape: [usize; 4],
    mode: Mode,
    residual: Option<bool>,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let x = tensor::<B, 4>(x, shape, device).require_grad();
    let r = tensor::<B, 4>(r, shape, device).require_grad();
    let then = match residual {
        None => Then::Nothing,
        Some(false) => Then::Relu,
        Some(true) => Then::AddRelu(r.clone()),
    };
    let y = bn.forward_then(x.clone(), mode, then);
    let n: usize = shape.iter().product();
    let w: Vec<f32> = (0..n).map(|i| ((i as f32 + 1.0) * 0.618_034).fract() - 0.4).collect();
    let grads = (y.clone().reshape([n]) * tensor::<B, 1>(&w, [n], device)).sum().backward();
    let mut out = vec![host(y.inner()), host(x.grad(&grads).expect("input gradient"))];
    out.extend(bn.gamma.grad(&grads).map(host));
    out.extend(bn.beta.grad(&grads).map(host));
    if residual == Some(true) {
        out.push(host(r.grad(&grads).expect("residual gradient")));
    }
    out.push(host(bn.running_mean.value()));
    out.push(host(bn.running_var.value()));
    out
}

/// BatchNorm as the GPU runs it (its tensor formulation) against the CPU's fused kernel:
/// three steps in training mode (running statistics carried over), then evaluation mode,
/// with each epilogue.
fn batch_norm<G: AutodiffBackend>(device: &G::Device) {
    let cpu = Default::default();
    let shape = [4, 5, 6, 6];
    let n: usize = shape.iter().product();
    for residual in [None, Some(false), Some(true)] {
        let (a, b) = (batch_norm_layer::<G>(5, device), batch_norm_layer::<Cpu>(5, &cpu));
        for step in 0..4u64 {
            let mode = if step < 3 { Mode::Train } else { Mode::Eval };
            let x: Vec<f32> = pixels(n, 20 + step).iter().map(|v| 3.0 * v - 0.8).collect();
            let r: Vec<f32> = pixels(n, 30 + step).iter().map(|v| v - 0.5).collect();
            let (ours, theirs) =
                (bn_step(&a, &x, &r, shape, mode, residual, device), bn_step(&b, &x, &r, shape, mode, residual, &cpu));
            assert_eq!(ours.len(), theirs.len());
            let names = ["output", "input gradient", "gamma gradient", "beta gradient", "residual gradient"];
            let k = theirs.len();
            for (i, (u, v)) in ours.iter().zip(&theirs).enumerate() {
                let what = if i >= k - 2 { ["running mean", "running variance"][i + 2 - k] } else { names[i] };
                let tolerance = if i == 0 || i >= k - 2 { FORWARD } else { GRADIENT };
                assert_close(&format!("BatchNorm {residual:?} step {step} ({mode:?}): {what}"), u, v, tolerance);
            }
        }
    }
}

/// Every loss (and both weighted means): value and gradient with respect to the logits.
fn losses<G: AutodiffBackend>(device: &G::Device) {
    let cpu = Default::default();
    let counts = [500, 120, 40, 10, 3];
    let logits: Vec<f32> = pixels(8 * 5, 40).iter().map(|v| 6.0 * v - 3.0).collect();
    let targets = [0, 1, 2, 3, 4, 4, 3, 0];
    let weights = [0.2, 0.5, 0.9, 1.4, 2.0];
    let kinds = [
        LossKind::CrossEntropy,
        LossKind::Focal { gamma: 1.0 },
        LossKind::Ldam { max_margin: 0.5, scale: 30.0 },
        LossKind::LogitAdjusted { tau: 1.0 },
    ];
    fn run<B: AutodiffBackend>(
        kind: LossKind,
        mean: WeightedMean,
        weighted: bool,
        (logits, targets, counts, weights): (&[f32], &[usize], &[usize], &[f64]),
        device: &B::Device,
    ) -> (Vec<f32>, Vec<f32>) {
        let z = tensor::<B, 2>(logits, [targets.len(), counts.len()], device).require_grad();
        let w = weighted.then(|| weight_tensor::<B>(weights, device));
        let loss = ClassLoss::<B>::new(kind, mean, counts, device).forward(
            z.clone(),
            int_tensor::<B>(targets, device),
            w.as_ref(),
        );
        let grads = loss.backward();
        (host(loss.inner()), host(z.grad(&grads).expect("logit gradient")))
    }
    for kind in kinds {
        for (mean, weighted) in
            [(WeightedMean::BatchSize, false), (WeightedMean::BatchSize, true), (WeightedMean::WeightSum, true)]
        {
            let data = (&logits[..], &targets[..], &counts[..], &weights[..]);
            let (a, b) = (run::<G>(kind, mean, weighted, data, device), run::<Cpu>(kind, mean, weighted, data, &cpu));
            let what = format!("{kind:?}, {mean:?}, weighted {weighted}");
            assert_close(&format!("{what}: loss"), &a.0, &b.0, FORWARD);
            assert_close(&format!("{what}: gradient"), &a.1, &b.1, GRADIENT);
        }
    }
}

/// Every parameter of a model, in visiting order.
fn parameters<B: Backend>(model: &Net<B>) -> Vec<Vec<f32>> {
    m2m_tests::snapshot::<B, Net<B>>(model)
}

/// Two SGD steps with momentum 0.9 and weight decay 5e-4 (what recipes train with).
fn sgd_steps<B: AutodiffBackend>(mut model: Net<B>, x: &[f32], labels: &[usize], device: &B::Device) -> Net<B> {
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .with_weight_decay(Some(WeightDecayConfig::new(5e-4)))
        .init::<B, Net<B>>();
    for _ in 0..2 {
        let logits = model.logits(tensor::<B, 4>(x, [4, 1, 16, 16], device), Mode::Train);
        let loss = ClassLoss::<B>::new(LossKind::CrossEntropy, WeightedMean::BatchSize, &[1; 10], device).forward(
            logits,
            int_tensor::<B>(labels, device),
            None,
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    model
}

/// SGD with momentum and weight decay: the weights after two steps.
fn sgd<G: AutodiffBackend>(device: &G::Device) {
    let cpu = Default::default();
    let s = spec(Architecture::SmallCnn, 1, 10);
    let reference: Net<Cpu> = s.init_seeded(50, &cpu);
    let gpu: Net<G> = same_net(&s, &reference, device);
    let x = pixels(4 * 256, 51);
    let labels = [1, 2, 3, 4];
    let (a, b) = (sgd_steps(gpu, &x, &labels, device), sgd_steps(reference, &x, &labels, &cpu));
    for (i, (u, v)) in parameters(&a).iter().zip(&parameters(&b)).enumerate() {
        assert_close(&format!("parameter {i} after two SGD steps"), u, v, GRADIENT);
    }
}

/// M2m on one batch: the same planned slots, seeds and Bernoulli draws (host-side, from
/// the same stream), g's confidences and the translations' distances within tolerance,
/// and the same gamma decisions wherever a confidence is not within that tolerance of
/// gamma; then the whole batch through `M2m::translate_batch`.
fn m2m_batch<G: AutodiffBackend>(device: &G::Device) {
    let cpu = Default::default();
    let s = spec(Architecture::SmallCnn, 1, 3);
    let (f_ref, g_ref): (Net<Cpu>, Net<Cpu>) = (s.init_seeded(60, &cpu), s.init_seeded(61, &cpu));
    let (f, g): (Net<G>, Net<G>) = (same_net(&s, &f_ref, device), same_net(&s, &g_ref, device));
    let counts = vec![400, 80, 12];
    let labels: Vec<usize> = (0..16).map(|i| [0, 1, 2, 2][i % 4]).collect();
    let shape = [16, 1, 16, 16];
    let x = pixels(shape.iter().product(), 62);
    let params = TranslationParams { steps: 5, step_size: 0.1, beta: 0.99, ..Default::default() };
    let probe = params.clone().check().unwrap();
    let planned =
        plan_slots(&labels, &counts, probe.beta(), probe.seed_selection(), &mut ChaCha12Rng::seed_from_u64(63));
    assert!(planned.len() >= 4, "{planned:?}");
    let seeds: Vec<usize> = planned.iter().map(|p| p.seed).collect();
    let targets: Vec<usize> = planned.iter().map(|p| p.target).collect();
    let seed_classes: Vec<usize> = planned.iter().map(|p| p.seed_class).collect();
    fn run<B: AutodiffBackend>(
        (f, g): (&Net<B>, &Net<B>),
        x: &[f32],
        shape: [usize; 4],
        (seeds, targets, seed_classes): (&[usize], &[usize], &[usize]),
        config: &m2m_core::translation::TranslationConfig,
        device: &B::Device,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let images = tensor::<B, 4>(x, shape, device).select(0, int_tensor::<B>(seeds, device));
        let out = translate(
            &f.clone().no_grad(),
            g,
            images.clone(),
            targets,
            seed_classes,
            config,
            &mut ChaCha12Rng::seed_from_u64(64),
        );
        let moved = host(
            (out.images.clone() - images).powi_scalar(2).sum_dim(3).sum_dim(2).sum_dim(1).sqrt().reshape([seeds.len()]),
        );
        (out.target_confidence, moved, host(out.images))
    }
    let jobs = (&seeds[..], &targets[..], &seed_classes[..]);
    let (conf, moved, images) = run::<G>((&f, &g), &x, shape, jobs, &probe, device);
    let (conf_ref, moved_ref, images_ref) = run::<Cpu>((&f_ref, &g_ref), &x, shape, jobs, &probe, &cpu);
    assert_close("g's confidence on the target after translation", &conf, &conf_ref, GRADIENT);
    assert_close("L2 distance of each translation from its seed", &moved, &moved_ref, GRADIENT);
    assert_close("translated images", &images, &images_ref, GRADIENT);
    // gamma between the confidences, so that decisions go both ways.
    let mut sorted = conf_ref.clone();
    sorted.sort_by(f32::total_cmp);
    let gamma = f64::from(sorted[sorted.len() / 2]) - 1e-4;
    let draws = |c: &[f32]| accept(c, &planned, gamma, &mut ChaCha12Rng::seed_from_u64(65));
    let (decided, decided_ref) = (draws(&conf), draws(&conf_ref));
    let mut compared = 0;
    for (j, (&a, &b)) in decided.iter().zip(&decided_ref).enumerate() {
        if (f64::from(conf_ref[j]) - gamma).abs() > 1e-3 {
            assert_eq!(a, b, "slot {j}: gamma decision (confidence {} vs {}, gamma {gamma})", conf[j], conf_ref[j]);
            compared += 1;
        }
    }
    assert!(compared >= planned.len() / 2, "too few decisions away from gamma to compare: {compared}");

    // The whole batch through the generator: slots, seeds, decisions and the batch after.
    let config = TranslationParams { gamma: gamma.max(1e-6), ..params }.check().unwrap();
    let (ours, gen) = M2m::new(&g, counts.clone(), config.clone()).translate_batch(
        &f,
        tensor::<G, 4>(&x, shape, device),
        &labels,
        &mut ChaCha12Rng::seed_from_u64(66),
    );
    let (theirs, gen_ref) = M2m::new(&g_ref, counts, config).translate_batch(
        &f_ref,
        tensor::<Cpu, 4>(&x, shape, &cpu),
        &labels,
        &mut ChaCha12Rng::seed_from_u64(66),
    );
    assert_eq!(gen.planned, gen_ref.planned, "planned slots and seeds");
    for (j, (&a, &b)) in gen.accepted.iter().zip(&gen_ref.accepted).enumerate() {
        if (f64::from(gen_ref.confidence[j]) - gamma).abs() > 1e-3 {
            assert_eq!(a, b, "slot {j}: accepted");
        }
    }
    if gen.accepted == gen_ref.accepted {
        assert_close("the batch after M2m", &host(ours), &host(theirs), GRADIENT);
    }
}

/// Models saved on the GPU backend load on the CPU with the same bits, and the reverse;
/// the start-up check of evaluation mode passes on the GPU backend.
fn checkpoints_and_checks<G: AutodiffBackend>(device: &G::Device) {
    let cpu = Default::default();
    let s = spec(Architecture::ResNet32, 3, 10);
    let dir = tempfile::tempdir().unwrap();
    let reference: Net<Cpu> = s.init_seeded(70, &cpu);
    let gpu: Net<G> = same_net(&s, &reference, device);
    save_classifier(&gpu, &s, &dir.path().join("from-gpu")).unwrap();
    let on_cpu: Net<Cpu> = load_classifier(&s, &dir.path().join("from-gpu"), &cpu).unwrap();
    assert!(weights_to_bytes(&on_cpu) == weights_to_bytes(&reference), "saved on the GPU, loaded on the CPU");
    save_classifier(&reference, &s, &dir.path().join("from-cpu")).unwrap();
    let on_gpu: Net<G> = load_classifier(&s, &dir.path().join("from-cpu"), device).unwrap();
    assert!(weights_to_bytes(&on_gpu) == weights_to_bytes(&reference), "saved on the CPU, loaded on the GPU");
    let x = pixels(4 * 3 * 16 * 16, 71);
    check_eval_mode(&on_gpu, tensor::<G, 4>(&x, [4, 3, 16, 16], device), "f").unwrap();
}

/// How far apart two runs of the same training may end on a backend, relative: 0 (bit for
/// bit) without fusion; with fusion, CubeCL's autotuning picks kernels by timing, and two
/// picks may round differently: two straight runs of the MLP below in one process ended
/// 6.7e-8 and 7.4e-8 apart on lavapipe (2026-12-05), and bit for bit with
/// `CUBECL_AUTOTUNE_LEVEL=minimal`.
const FUSED_RUNS_APART: f64 = 1e-6;

/// burn-train with `m2m_burn_plugin::hook::fusion_safe` and its file checkpointer on this
/// backend: 4 epochs straight, and 2 epochs then a new launch resuming from checkpoint 2 to
/// epoch 4, end with the same weights, to within `tolerance` (relative). Returns them.
fn fusion_safe_resume<G: AutodiffBackend>(device: &G::Device, tolerance: f64) -> Vec<Vec<f32>> {
    use m2m_tests::fusion::{train, TrainingLoop};
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let straight = train::<G>(a.path(), 4, None, TrainingLoop::FusionSafe, device);
    train::<G>(b.path(), 2, None, TrainingLoop::FusionSafe, device);
    let resumed = train::<G>(b.path(), 4, Some(2), TrainingLoop::FusionSafe, device);
    if tolerance == 0.0 {
        assert!(straight == resumed, "resumed after 2 of 4 epochs, the weights differ from a straight run");
    }
    assert_close("resumed after 2 of 4 epochs vs straight", &resumed.concat(), &straight.concat(), tolerance);
    straight
}

/// Whether backend `name` runs here; says why not, and fails when `M2M_REQUIRE_GPU`
/// names it.
fn available<E: std::fmt::Display>(name: &str, probe: impl FnOnce() -> Result<(), E>) -> bool {
    match probe() {
        Ok(()) => true,
        Err(e) => {
            let required = std::env::var("M2M_REQUIRE_GPU").unwrap_or_default();
            assert!(
                !required.split(',').any(|n| n.trim() == name),
                "{name} is required (M2M_REQUIRE_GPU) but cannot run: {e:#}"
            );
            eprintln!("skipped: {name} cannot run here: {e:#}");
            false
        }
    }
}

/// The test set on one backend: `$device` gives its device, `$probe` checks it first.
macro_rules! gpu_path {
    ($name:ident, $backend:ty, $device:expr, $probe:expr, $runs_apart:expr) => {
        mod $name {
            type G = $backend;

            fn device() -> Option<burn::tensor::Device<G>> {
                super::available(stringify!($name), $probe).then(|| $device)
            }

            #[test]
            fn models_match_flex() {
                device().map(|d| super::models::<G>(&d));
            }
            #[test]
            fn batch_norm_matches_flex() {
                device().map(|d| super::batch_norm::<G>(&d));
            }
            #[test]
            fn losses_match_flex() {
                device().map(|d| super::losses::<G>(&d));
            }
            #[test]
            fn sgd_matches_flex() {
                device().map(|d| super::sgd::<G>(&d));
            }
            #[test]
            fn m2m_batch_matches_flex() {
                device().map(|d| super::m2m_batch::<G>(&d));
            }
            #[test]
            fn checkpoints_cross_backends() {
                device().map(|d| super::checkpoints_and_checks::<G>(&d));
            }
            #[test]
            fn fusion_safe_checkpoints_resume_as_a_straight_run() {
                device().map(|d| super::fusion_safe_resume::<G>(&d, $runs_apart));
            }
        }
    };
}

/// The wgpu adapter of the tests: `M2M_TEST_WGPU` as `--backend` takes it, else `wgpu`.
#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> m2m_burn_plugin::backend::WgpuAdapter {
    use m2m_burn_plugin::backend::BackendChoice;
    match std::env::var("M2M_TEST_WGPU").unwrap_or_else(|_| "wgpu".into()).parse() {
        Ok(BackendChoice::Wgpu { adapter }) => adapter,
        Ok(other) => panic!("M2M_TEST_WGPU names {other:?}, not a wgpu adapter"),
        Err(e) => panic!("M2M_TEST_WGPU: {e}"),
    }
}

#[cfg(feature = "wgpu")]
gpu_path!(
    wgpu,
    m2m_burn_plugin::backend::Wgpu,
    m2m_burn_plugin::backend::wgpu_device(super::wgpu_adapter()),
    || m2m_burn_plugin::backend::probe_wgpu(super::wgpu_adapter()),
    super::FUSED_RUNS_APART
);

#[cfg(feature = "wgpu")]
gpu_path!(
    wgpu_unfused,
    m2m_burn_plugin::backend::WgpuUnfused,
    m2m_burn_plugin::backend::wgpu_device(super::wgpu_adapter()),
    || m2m_burn_plugin::backend::probe_wgpu(super::wgpu_adapter()),
    0.0
);

#[cfg(feature = "cuda")]
gpu_path!(
    cuda,
    m2m_burn_plugin::backend::Cuda,
    burn::backend::cuda::CudaDevice::new(0),
    || m2m_burn_plugin::backend::probe_cuda(0),
    super::FUSED_RUNS_APART
);

/// burn-train with `fusion_safe` on wgpu with fusion trains to the weights of wgpu without
/// fusion, to within what autotuning's kernel picks change (where burn-train's own loop
/// crashes at its first checkpoint: tracel-ai/burn#4347).
#[cfg(feature = "wgpu")]
#[test]
fn fusion_safe_on_fused_wgpu_trains_as_unfused_wgpu() {
    use m2m_burn_plugin::backend::{probe_wgpu, wgpu_device, Wgpu, WgpuUnfused};
    if !available("wgpu", || probe_wgpu(wgpu_adapter())) {
        return;
    }
    let device = wgpu_device(wgpu_adapter());
    let fused = fusion_safe_resume::<Wgpu>(&device, FUSED_RUNS_APART);
    let unfused = fusion_safe_resume::<WgpuUnfused>(&device, 0.0);
    let flat = |w: &[Vec<f32>]| w.concat();
    assert_close("weights after 4 epochs, fused vs unfused", &flat(&fused), &flat(&unfused), FUSED_RUNS_APART);
}
