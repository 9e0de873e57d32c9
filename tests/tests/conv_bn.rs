//! A frozen BatchNorm folded into the convolution before it (model::conv_bn) against the
//! two layers run as they are: each pair alone (every epilogue, stride 1 and 2, with and
//! without a convolution bias, on the CPU backend with and without autodiff), a whole
//! ResNet-32 (logits and input gradients), and M2m's translation of a fixed batch (the
//! same g confidences and the same accepted slots).

use burn::backend::Flex;
use burn::module::{AutodiffModule, Module, Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::PaddingConfig2d;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::kernels::batch_norm::affine_map;
use m2m_burn_plugin::kernels::conv::host_forward;
use m2m_burn_plugin::kernels::conv::slices::{ConvShape, Epilogue};
use m2m_burn_plugin::m2m::M2m;
use m2m_burn_plugin::model::{conv_bn, unfolded, Architecture, BatchNorm2d, Classifier, Mode, ModelSpec, Net, Then};
use m2m_core::seed::ChaCha12Rng;
use m2m_core::translation::TranslationParams;
use m2m_tests::{relative, relative_l2};
use rand::SeedableRng;

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// A 3x3 convolution (4 -> 6 channels) and a BatchNorm with statistics and affine
/// parameters away from their initial values, as after training; parameters tracked.
fn pair<B: Backend>(stride: usize, bias: bool, seed: u64) -> (Conv2d<B>, BatchNorm2d<B>) {
    let device = Default::default();
    let conv = m2m_core::seed::with_seed::<B, _>(&device, seed, || {
        let conv = Conv2dConfig::new([4, 6], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias)
            .init(&device);
        m2m_burn_plugin::model::materialize(&conv);
        conv
    });
    let draw = |dist, seed| m2m_tests::random::<B, 1>([6], dist, seed, &device);
    let mut bn = BatchNorm2d::new(6, &device);
    bn.gamma = Param::from_tensor(draw(Distribution::Uniform(0.5, 1.5), seed + 1));
    bn.beta = Param::from_tensor(draw(Distribution::Normal(0.0, 0.5), seed + 2));
    bn.running_mean = RunningState::new(draw(Distribution::Normal(0.0, 0.3), seed + 3));
    bn.running_var = RunningState::new(draw(Distribution::Uniform(0.2, 2.0), seed + 4));
    (conv, bn)
}

/// [`pair`] with no parameter tracked (as M2m's f and g during translation).
fn frozen_pair<B: Backend>(stride: usize, bias: bool, seed: u64) -> (Conv2d<B>, BatchNorm2d<B>) {
    let (conv, bn) = pair(stride, bias, seed);
    (conv.no_grad(), bn.no_grad())
}

fn then<B: Backend>(kind: usize, residual: &Tensor<B, 4>) -> Then<B> {
    match kind {
        0 => Then::Nothing,
        1 => Then::Relu,
        _ => Then::AddRelu(residual.clone()),
    }
}

#[test]
fn a_frozen_pair_folds_to_the_same_outputs_and_gradients() {
    let device = Default::default();
    for (stride, bias) in [(1, false), (2, false), (1, true)] {
        let (conv, bn) = frozen_pair::<Cpu>(stride, bias, 10 * stride as u64 + bias as u64);
        let x = m2m_tests::random::<Cpu, 4>([3, 4, 9, 8], Distribution::Normal(0.0, 1.0), 3, &device);
        let out_hw = [9usize.div_ceil(stride), 8usize.div_ceil(stride)];
        let r = m2m_tests::random::<Cpu, 4>([3, 6, out_hw[0], out_hw[1]], Distribution::Normal(0.0, 1.0), 4, &device);
        for kind in 0..3 {
            let run = |fold: bool| {
                let (x, r) = (x.clone().require_grad(), r.clone().require_grad());
                let forward = || conv_bn(&conv, &bn, x.clone(), Mode::Eval, then(kind, &r));
                let out = if fold { forward() } else { unfolded(forward) };
                let n: usize = out.dims().iter().product();
                let weights = Tensor::<Cpu, 1>::from_floats(
                    (0..n).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<_>>().as_slice(),
                    &device,
                );
                let grads = (out.clone().reshape([n]) * weights).sum().backward();
                let r_grad = (kind == 2).then(|| host(r.grad(&grads).unwrap()));
                assert!(conv.weight.grad(&grads).is_none() && bn.gamma.grad(&grads).is_none());
                (host(out.inner()), host(x.grad(&grads).unwrap()), r_grad)
            };
            let (folded, plain) = (run(true), run(false));
            let case = format!("stride {stride}, bias {bias}, epilogue {kind}");
            assert!(relative(&folded.0, &plain.0) < 1e-5, "output, {case}");
            assert!(relative(&folded.1, &plain.1) < 1e-5, "input gradient, {case}");
            if let (Some(a), Some(b)) = (&folded.2, &plain.2) {
                assert!(relative(a, b) < 1e-5, "residual gradient, {case}");
            }
            // Bit for bit the folded kernel's output: the fold did run.
            let shape =
                ConvShape { n: 3, c_in: 4, h: 9, w: 8, c_out: 6, kernel: [3, 3], stride: [stride; 2], padding: [1, 1] };
            let (mean, var) = (host(bn.running_mean.value()), host(bn.running_var.value()));
            let (a, b) = affine_map(&host(bn.gamma.val()), &host(bn.beta.val()), &mean, &var, bn.epsilon);
            let mut w = host(conv.weight.val());
            w.chunks_exact_mut(36).zip(&a).for_each(|(f, a)| f.iter_mut().for_each(|v| *v *= a));
            let shift: Vec<f32> = match &conv.bias {
                Some(c) => host(c.val()).iter().zip(&a).zip(&b).map(|((c, a), b)| c * a + b).collect(),
                None => b,
            };
            let residual = host(r.clone());
            let epilogue =
                Epilogue { bias: Some(&shift), residual: (kind == 2).then_some(&residual[..]), relu: kind > 0 };
            assert!(folded.0 == host_forward(&shape, &host(x.clone()), &w, &epilogue), "not folded, {case}");
        }
    }
    // Tracked parameters in evaluation mode (BatchNorm frozen for fine-tuning): not
    // folded, the parameters get their gradients.
    let (conv, bn) = pair::<Cpu>(1, false, 40);
    let x = m2m_tests::random::<Cpu, 4>([2, 4, 6, 6], Distribution::Normal(0.0, 1.0), 5, &device);
    let grads = conv_bn(&conv, &bn, x, Mode::Eval, Then::Relu).sum().backward();
    assert!(conv.weight.grad(&grads).is_some() && bn.gamma.grad(&grads).is_some());
}

#[test]
fn without_autodiff_every_mode_folds_with_running_statistics() {
    let device = Default::default();
    let (conv, bn) = frozen_pair::<Flex>(2, false, 50);
    let x = m2m_tests::random::<Flex, 4>([2, 4, 7, 7], Distribution::Normal(0.0, 1.0), 6, &device);
    let r = m2m_tests::random::<Flex, 4>([2, 6, 4, 4], Distribution::Normal(0.0, 1.0), 7, &device);
    for mode in [Mode::Train, Mode::Eval] {
        for kind in 0..3 {
            let folded = host(conv_bn(&conv, &bn, x.clone(), mode, then(kind, &r)));
            let plain = host(unfolded(|| conv_bn(&conv, &bn, x.clone(), mode, then(kind, &r))));
            assert!(relative(&folded, &plain) < 1e-5, "{mode:?}, epilogue {kind}");
        }
    }
}

fn resnet() -> ModelSpec {
    ModelSpec {
        architecture: Architecture::ResNet32,
        cosine_head: false,
        in_channels: 1,
        num_classes: 3,
        mean: vec![0.5],
        std: vec![0.25],
    }
}

/// A ResNet-32 after a few SGD steps: running statistics and BatchNorm parameters away
/// from their initial values in every layer.
fn trained(seed: u64) -> Net<Cpu> {
    let device = Default::default();
    let mut net: Net<Cpu> = resnet().init_seeded(seed, &device);
    let mut optim = SgdConfig::new().init::<Cpu, Net<Cpu>>();
    let ce = CrossEntropyLossConfig::new().init(&device);
    for step in 0..3 {
        let x = m2m_tests::random::<Cpu, 4>([16, 1, 28, 28], Distribution::Uniform(0.0, 1.0), seed + step, &device);
        let y = Tensor::<Cpu, 1, Int>::from_ints([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0], &device);
        let loss = ce.forward(net.logits(x, Mode::Train), y);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(0.05, net, grads);
    }
    net
}

#[test]
fn a_frozen_resnet_folds_to_the_same_logits_gradients_and_translations() {
    let device = Default::default();
    let (f, g) = (trained(1), trained(100));
    let frozen = f.clone().no_grad();
    let x = m2m_tests::random::<Cpu, 4>([12, 1, 28, 28], Distribution::Uniform(0.0, 1.0), 9, &device);
    let y = Tensor::<Cpu, 1, Int>::from_ints([2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0], &device);
    let run = |fold: bool| {
        let x = x.clone().require_grad();
        let forward = || frozen.logits(x.clone(), Mode::Eval);
        let logits = if fold { forward() } else { unfolded(forward) };
        let grads = CrossEntropyLossConfig::new().init(&device).forward(logits.clone(), y.clone()).backward();
        (host(logits.inner()), host(x.grad(&grads).unwrap()))
    };
    let (folded, plain) = (run(true), run(false));
    // Input gradients image by image, in L2: where a pre-activation lies within rounding
    // of 0, the two paths can put it on different sides of a ReLU, which changes that
    // image's gradient around it (any change of summation order can; seen with other
    // kernels: 10 images within 1.1e-6, 2 at 1.7e-3 and 5.1e-3). So: most images agree to
    // rounding and none is far off.
    let logits = relative(&folded.0, &plain.0);
    let mut per_image: Vec<f32> =
        (0..12).map(|i| relative_l2(&folded.1[i * 784..(i + 1) * 784], &plain.1[i * 784..(i + 1) * 784])).collect();
    per_image.sort_by(f32::total_cmp);
    println!("ResNet-32 folded against unfolded: logits {logits:.1e}, input gradients per image (L2) {per_image:?}");
    assert!(logits < 1e-5, "logits {logits:.1e}");
    assert!(per_image[8] < 1e-5 && per_image[11] < 1e-2, "input gradients per image {per_image:?}");
    // Evaluation without autodiff folds too.
    let inner = f.valid();
    let (a, b) =
        (host(inner.logits(x.clone().inner(), Mode::Eval)), host(unfolded(|| inner.logits(x.inner(), Mode::Eval))));
    assert!(relative(&a, &b) < 1e-5);

    // M2m's translation through f and g, both frozen. One step: the same images and g
    // confidences up to rounding (image by image, as for the gradients). Ten steps (the paper's): each step moves every image by
    // a fixed length along its normalised gradient and clamps, which amplifies rounding
    // differences (measured: confidences up to 8e-3 apart on 2 of 9 rows), so the
    // check is that the decisions agree: with gamma in the widest gap between confidences,
    // the same slots are accepted, some and not all.
    let labels = vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2, 1];
    let images = m2m_tests::random::<Cpu, 4>([12, 1, 28, 28], Distribution::Uniform(0.0, 1.0), 11, &device);
    let translate = |steps: usize, gamma: f64, fold: bool| {
        let config = TranslationParams { gamma, beta: 0.5, steps, ..Default::default() }.check().unwrap();
        let m2m = M2m::new(&g, vec![1000, 100, 10], config);
        let run = || m2m.translate_batch(&f, images.clone(), &labels, &mut ChaCha12Rng::seed_from_u64(4));
        let (mixed, generation) = if fold { run() } else { unfolded(run) };
        (host(mixed), generation)
    };
    let ((one_images, one), (plain_images, plain)) = (translate(1, 0.5, true), translate(1, 0.5, false));
    assert_eq!(one.planned, plain.planned);
    let rows = one.planned.len();
    let size = one_images.len() / 12;
    // Image by image, for the reason given for the gradients above.
    let mut per_image: Vec<(f32, f32)> = (0..rows)
        .map(|r| {
            let slot = one.planned[r].slot;
            let pixels = relative_l2(&one_images[slot * size..][..size], &plain_images[slot * size..][..size]);
            (pixels, (one.confidence[r] - plain.confidence[r]).abs())
        })
        .collect();
    per_image.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!("one translation step, folded against unfolded, per image (L2 of pixels, g confidence): {per_image:?}");
    let agree = per_image.iter().filter(|(pixels, confidence)| *pixels < 1e-5 && *confidence < 1e-5).count();
    assert!(agree * 4 >= rows * 3, "one step: {agree} of {rows} images agree to rounding: {per_image:?}");
    assert!(per_image.iter().all(|(pixels, confidence)| *pixels < 1e-2 && *confidence < 1e-2), "{per_image:?}");

    let (_, probe) = translate(10, 0.5, false);
    let mut confidences = probe.confidence.clone();
    confidences.sort_by(f32::total_cmp);
    assert!(confidences.len() >= 4, "{} translations planned", confidences.len());
    let widest = |m: (f32, f32), c: (f32, f32)| if c.0 > m.0 { c } else { m };
    let (gap, low) = confidences.windows(2).map(|w| (w[1] - w[0], w[0])).fold((0.0, 0.0), widest);
    assert!(gap > 0.1, "confidences too close to separate: {confidences:?}");
    let gamma = (low + gap / 2.0) as f64;
    let ((_, folded), (_, plain)) = (translate(10, gamma, true), translate(10, gamma, false));
    assert_eq!(folded.planned, plain.planned);
    assert_eq!(folded.accepted, plain.accepted);
    assert!(folded.accepted.iter().any(|&a| a) && folded.accepted.iter().any(|&a| !a), "{:?}", folded.accepted);
    let confidence = relative(&folded.confidence, &plain.confidence);
    println!("ten steps, folded against unfolded: g confidences {confidence:.1e}; accepted {:?}", folded.accepted);
}
