//! The fused CPU BatchNorm (model::batch_norm) against the same layer as burn tensor ops
//! (`forward_tensor_ops`): outputs, every gradient (input, gamma, beta, residual) and the
//! running statistics, in training and evaluation mode, with each epilogue, on shapes
//! with odd sizes, one image, one pixel; parameters frozen (M2m's f and g); and Flex
//! alone (evaluation without autodiff).

use burn::backend::Flex;
use burn::module::{Module, Param, RunningState};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::kernels::batch_norm::{self as kernels, BnShape};
use m2m_burn_plugin::model::{BatchNorm2d, Mode, Then};

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// Largest absolute difference relative to the largest magnitude of `expected`.
fn relative(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "an all-zero reference checks nothing");
    actual.iter().zip(expected).fold(0.0f32, |m, (a, e)| m.max((a - e).abs())) / scale
}

/// A layer with these parameters and running statistics (two calls give two independent
/// layers: running statistics are shared between clones).
fn layer<B: Backend>(values: &[Vec<f32>; 4], device: &B::Device) -> BatchNorm2d<B> {
    let t = |v: &Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), device);
    let mut bn = BatchNorm2d::new(values[0].len(), device);
    bn.gamma = Param::from_tensor(t(&values[0]));
    bn.beta = Param::from_tensor(t(&values[1]));
    bn.running_mean = RunningState::new(t(&values[2]));
    bn.running_var = RunningState::new(t(&values[3]));
    bn
}

fn parameters(c: usize) -> [Vec<f32>; 4] {
    let f = |k: f32| (0..c).map(|i| k * (1.0 + (i as f32 * 0.37).sin())).collect::<Vec<_>>();
    let (gamma, beta, mean) = (f(0.8), f(0.3).iter().map(|v| v - 0.2).collect(), f(0.5));
    let var = f(1.5).iter().map(|v| v + 0.1).collect();
    [gamma, beta, mean, var]
}

fn running<B: Backend>(bn: &BatchNorm2d<B>) -> Vec<f32> {
    [host(bn.running_mean.value_sync()), host(bn.running_var.value_sync())].concat()
}

#[derive(Debug, PartialEq)]
struct Outcome {
    y: Vec<f32>,
    x_grad: Vec<f32>,
    gamma_grad: Option<Vec<f32>>,
    beta_grad: Option<Vec<f32>>,
    residual_grad: Option<Vec<f32>>,
    running: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Epilogue {
    Nothing,
    Relu,
    AddRelu,
}

/// One forward and backward of a loss that weighs every output differently.
fn run(
    bn: &BatchNorm2d<Cpu>,
    x: &Tensor<Cpu, 4>,
    r: &Tensor<Cpu, 4>,
    mode: Mode,
    epilogue: Epilogue,
    fused: bool,
) -> Outcome {
    let device = x.device();
    let x = x.clone().require_grad();
    let r = r.clone().require_grad();
    let then = match epilogue {
        Epilogue::Nothing => Then::Nothing,
        Epilogue::Relu => Then::Relu,
        Epilogue::AddRelu => Then::AddRelu(r.clone()),
    };
    let y = if fused { bn.forward_then(x.clone(), mode, then) } else { bn.forward_tensor_ops(x.clone(), mode, then) };
    let n: usize = y.dims().iter().product();
    // Weights of both signs whose sums over any set of outputs (a ReLU mask, a channel)
    // are not zero: half-integers such as (i % 7) - 2.5 could cancel exactly.
    let weights: Vec<f32> = (0..n).map(|i| ((i as f32 + 1.0) * 0.618_034).fract() - 0.4).collect();
    let weights = Tensor::<Cpu, 1>::from_floats(weights.as_slice(), &device);
    let grads = (y.clone().reshape([n]) * weights).sum().backward();
    Outcome {
        y: host(y.inner()),
        x_grad: host(x.grad(&grads).expect("input gradient")),
        gamma_grad: bn.gamma.grad(&grads).map(host),
        beta_grad: bn.beta.grad(&grads).map(host),
        residual_grad: (epilogue == Epilogue::AddRelu).then(|| host(r.grad(&grads).expect("residual gradient"))),
        running: running(bn),
    }
}

fn assert_close(ours: &Outcome, theirs: &Outcome, what: &str) {
    assert!(relative(&ours.y, &theirs.y) < 1e-5, "output, {what}: {}", relative(&ours.y, &theirs.y));
    assert!(
        relative(&ours.x_grad, &theirs.x_grad) < 1e-4,
        "input gradient, {what}: {}",
        relative(&ours.x_grad, &theirs.x_grad)
    );
    for (name, a, b) in [
        ("gamma", &ours.gamma_grad, &theirs.gamma_grad),
        ("beta", &ours.beta_grad, &theirs.beta_grad),
        ("residual", &ours.residual_grad, &theirs.residual_grad),
    ] {
        assert_eq!(a.is_some(), b.is_some(), "{name} gradient present, {what}");
        if let (Some(a), Some(b)) = (a, b) {
            assert!(relative(a, b) < 1e-4, "{name} gradient, {what}: {}", relative(a, b));
        }
    }
    assert!(relative(&ours.running, &theirs.running) < 1e-5, "running statistics, {what}");
}

#[test]
fn the_fused_op_gives_the_tensor_formulations_outputs_gradients_and_statistics() {
    let device = Default::default();
    // n, c, h, w: odd sizes (lane tails), one image, one pixel per channel, ResNet-like.
    for [n, c, h, w] in [[4, 3, 5, 7], [1, 2, 3, 3], [6, 5, 1, 1], [8, 16, 8, 8], [3, 4, 9, 11]] {
        let x = m2m_tests::random::<Cpu, 4>([n, c, h, w], Distribution::Normal(0.7, 2.0), 1, &device);
        let r = m2m_tests::random::<Cpu, 4>([n, c, h, w], Distribution::Normal(0.0, 1.0), 2, &device);
        let values = parameters(c);
        for mode in [Mode::Train, Mode::Eval] {
            for epilogue in [Epilogue::Nothing, Epilogue::Relu, Epilogue::AddRelu] {
                let what = format!("{:?} {mode:?} {epilogue:?}", [n, c, h, w]);
                let (ours_bn, theirs_bn) = (layer::<Cpu>(&values, &device), layer::<Cpu>(&values, &device));
                let ours = run(&ours_bn, &x, &r, mode, epilogue, true);
                let theirs = run(&theirs_bn, &x, &r, mode, epilogue, false);
                assert_close(&ours, &theirs, &what);
                // The statistics moved in training mode only (and were checked above).
                assert_eq!(
                    ours.running == [values[2].clone(), values[3].clone()].concat(),
                    mode == Mode::Eval,
                    "{what}"
                );
                // Two training steps in a row: the second uses the first's update.
                if mode == Mode::Train {
                    assert_close(
                        &run(&ours_bn, &r, &x, mode, epilogue, true),
                        &run(&theirs_bn, &r, &x, mode, epilogue, false),
                        &what,
                    );
                }
            }
        }
    }
}

#[test]
fn the_fused_op_is_the_cpu_path_and_leaves_frozen_parameters_alone() {
    let device = Default::default();
    let values = parameters(3);
    let x = m2m_tests::random::<Cpu, 4>([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), 3, &device);
    // Our kernel's output bit for bit: the dispatch took the fused path.
    let bn = layer::<Cpu>(&values, &device);
    let y = host(bn.forward_then(x.clone(), Mode::Eval, Then::Relu).inner());
    let shape = BnShape { n: 2, c: 3, hw: 20 };
    let a: Vec<f32> = (0..3).map(|i| values[0][i] * (1.0 / (values[3][i] as f64 + 1e-5).sqrt()) as f32).collect();
    let b: Vec<f32> = (0..3).map(|i| values[1][i] - values[2][i] * a[i]).collect();
    assert_eq!(y, kernels::affine(&shape, &host(x.clone()), &a, &b, kernels::Epilogue::Relu, None));

    // Frozen parameters (M2m's f and g during translation): only the input gradient.
    let frozen = layer::<Cpu>(&values, &device).no_grad();
    let xg = x.clone().require_grad();
    let grads = frozen.forward_then(xg.clone(), Mode::Eval, Then::Relu).sum().backward();
    assert!(frozen.gamma.grad(&grads).is_none() && frozen.beta.grad(&grads).is_none());
    let reference = layer::<Cpu>(&values, &device);
    let xr = x.clone().require_grad();
    let expected = reference.forward_tensor_ops(xr.clone(), Mode::Eval, Then::Relu).sum().backward();
    assert!(relative(&host(xg.grad(&grads).unwrap()), &host(xr.grad(&expected).unwrap())) < 1e-5);

    // Flex alone (evaluation without autodiff) runs the same kernels.
    let plain = layer::<Flex>(&values, &device);
    let xi = x.inner();
    let r = m2m_tests::random::<Flex, 4>([2, 3, 4, 5], Distribution::Normal(0.0, 1.0), 4, &device);
    for then in [Then::Nothing, Then::Relu, Then::AddRelu(r)] {
        let ours = host(plain.forward_then(xi.clone(), Mode::Train, then.clone()));
        let theirs = host(plain.forward_tensor_ops(xi.clone(), Mode::Train, then));
        assert!(relative(&ours, &theirs) < 1e-5);
    }
}

#[test]
fn batch_statistics_keep_their_precision_far_from_zero() {
    // Values around 1000 with unit spread over ~100k entries: E[x^2] - E[x]^2 in f32 would
    // lose the variance; the two-pass statistics must not.
    let shape = BnShape { n: 128, c: 2, hw: 400 };
    let x: Vec<f32> =
        (0..shape.len()).map(|i| 1000.0 + ((i * 7919) % 1000) as f32 / 1000.0 * 3.4641016 - 1.7320508).collect();
    let (mean, var) = kernels::batch_stats(&shape, &x);
    for c in 0..2 {
        let values: Vec<f64> =
            (0..shape.n).flat_map(|i| x[(i * 2 + c) * 400..][..400].iter().map(|&v| v as f64)).collect();
        let m = values.iter().sum::<f64>() / values.len() as f64;
        let v = values.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / values.len() as f64;
        assert!((mean[c] as f64 - m).abs() < 1e-3, "mean {} vs {m}", mean[c]);
        assert!((var[c] as f64 - v).abs() / v < 1e-3, "variance {} vs {v}", var[c]);
    }
}
