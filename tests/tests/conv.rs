//! Our CPU convolution (kernels::conv) against burn's: the three kernels on shapes that
//! cover stride, padding, odd and non-square sizes, channel counts and batch 1, and the
//! autodiff op (forward, input and weight gradients, tracked or not) inside a model layer.

use burn::backend::Flex;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::{Distribution, Tensor, TensorPrimitive};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::kernels::conv::conv2d;
use m2m_burn_plugin::kernels::conv::slices::{self as kernels, ConvShape};
use m2m_tests::relative;

fn host<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().into_vec::<f32>().unwrap()
}

#[test]
fn kernels_match_burn_on_every_shape_we_cover() {
    let device = Default::default();
    let shapes = [
        // n, c_in, h, w, c_out, kernel, stride, padding
        ConvShape { n: 2, c_in: 3, h: 8, w: 8, c_out: 4, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
        ConvShape { n: 3, c_in: 4, h: 9, w: 7, c_out: 5, kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
        ConvShape { n: 1, c_in: 2, h: 6, w: 5, c_out: 3, kernel: [3, 3], stride: [1, 1], padding: [0, 0] },
        ConvShape { n: 2, c_in: 1, h: 28, w: 28, c_out: 16, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
        ConvShape { n: 2, c_in: 16, h: 7, w: 7, c_out: 32, kernel: [3, 3], stride: [2, 2], padding: [1, 1] },
        ConvShape { n: 2, c_in: 3, h: 5, w: 6, c_out: 2, kernel: [1, 1], stride: [1, 1], padding: [0, 0] },
        ConvShape { n: 2, c_in: 2, h: 7, w: 8, c_out: 3, kernel: [5, 3], stride: [1, 2], padding: [2, 1] },
        ConvShape { n: 1, c_in: 2, h: 4, w: 4, c_out: 2, kernel: [3, 3], stride: [3, 3], padding: [2, 2] },
        // Same-size stride-1 shapes (the one-copy-per-row path), with shifts of 2 and
        // images narrower than the kernel's reach.
        ConvShape { n: 2, c_in: 3, h: 6, w: 7, c_out: 4, kernel: [5, 5], stride: [1, 1], padding: [2, 2] },
        ConvShape { n: 2, c_in: 2, h: 1, w: 2, c_out: 3, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
        ConvShape { n: 1, c_in: 2, h: 3, w: 5, c_out: 2, kernel: [3, 5], stride: [1, 1], padding: [1, 2] },
        ConvShape { n: 2, c_in: 2, h: 2, w: 1, c_out: 3, kernel: [5, 5], stride: [1, 1], padding: [2, 2] },
        // ResNet-32's layers at batch 12 (28x28 greyscale input).
        ConvShape { n: 12, c_in: 1, h: 28, w: 28, c_out: 16, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
        ConvShape { n: 12, c_in: 16, h: 28, w: 28, c_out: 16, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
        ConvShape { n: 12, c_in: 32, h: 14, w: 14, c_out: 32, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
        ConvShape { n: 12, c_in: 64, h: 7, w: 7, c_out: 64, kernel: [3, 3], stride: [1, 1], padding: [1, 1] },
    ];
    for s in shapes {
        let [oh, ow] = s.out_hw();
        let x = m2m_tests::random::<Flex, 4>([s.n, s.c_in, s.h, s.w], Distribution::Normal(0.0, 1.0), 1, &device);
        let w_shape = [s.c_out, s.c_in, s.kernel[0], s.kernel[1]];
        let w = m2m_tests::random::<Flex, 4>(w_shape, Distribution::Normal(0.0, 0.5), 7, &device);
        let g = m2m_tests::random::<Flex, 4>([s.n, s.c_out, oh, ow], Distribution::Normal(0.0, 1.0), 2, &device);
        let options = ConvOptions::new(s.stride, s.padding, [1, 1], 1);
        let prim = |t: &Tensor<Flex, 4>| t.clone().into_primitive().tensor();
        let back = |t| Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(t));
        let (xv, wv, gv) = (host(x.clone()), host(w.clone()), host(g.clone()));

        let out = host(burn_conv2d(x.clone(), w.clone(), None, options.clone()));
        let error = relative(&kernels::forward(&s, &xv, &wv), &out);
        assert!(error < 1e-5, "forward {s:?}: {error:.1e}");
        let x_grad =
            host(back(<Flex as ModuleOps<Flex>>::conv2d_x_backward(prim(&x), prim(&w), prim(&g), options.clone())));
        let error = relative(&kernels::input_grad(&s, &gv, &wv), &x_grad);
        assert!(error < 1e-5, "input gradient {s:?}: {error:.1e}");
        let w_grad =
            host(back(<Flex as ModuleOps<Flex>>::conv2d_weight_backward(prim(&x), prim(&w), prim(&g), options)));
        assert!(relative(&kernels::weight_grad(&s, &xv, &gv), &w_grad) < 1e-5, "weight gradient {s:?}");
    }
}

/// A layer with weights drawn from burn's generator seeded with `seed`.
fn layer<B: Backend>(stride: usize, bias: bool, seed: u64) -> Conv2d<B> {
    let device = Default::default();
    m2m_core::seed::with_seed::<B, _>(&device, seed, || {
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias)
            .init(&device);
        // burn initialises lazily: draw now, under the seed.
        m2m_burn_plugin::model::materialize(&conv);
        conv
    })
}

#[test]
fn the_autodiff_op_gives_burns_outputs_and_gradients() {
    let device = Default::default();
    for (stride, bias) in [(1, false), (2, false), (1, true)] {
        let conv = layer::<Cpu>(stride, bias, stride as u64 + 10 * bias as u64);
        let x = m2m_tests::random::<Cpu, 4>([3, 3, 9, 8], Distribution::Normal(0.0, 1.0), 3, &device);
        // A loss that weighs every output differently, so every gradient entry matters.
        let weights = |n: usize| {
            Tensor::<Cpu, 1>::from_floats((0..n).map(|i| (i % 7) as f32 - 3.0).collect::<Vec<_>>().as_slice(), &device)
        };
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let out = if ours { conv2d(&conv, x.clone()) } else { conv.forward(x.clone()) };
            let dims = out.dims();
            let n = dims.iter().product();
            let loss = (out.clone().reshape([n]) * weights(n)).sum();
            let grads = loss.backward();
            let w_grad = conv.weight.grad(&grads).unwrap();
            (host(out.inner()), host(x.grad(&grads).unwrap()), host(w_grad))
        };
        let (ours, theirs) = (run(true), run(false));
        // Bit for bit our kernel's output: the dispatch took our path (burn sums in
        // another order).
        let shape = ConvShape {
            n: 3,
            c_in: 3,
            h: 9,
            w: 8,
            c_out: 5,
            kernel: [3, 3],
            stride: [stride, stride],
            padding: [1, 1],
        };
        if !bias {
            let kernel = conv_host_forward(&shape, &host(x.clone().inner()), &host(conv.weight.val().inner()));
            assert!(ours.0 == kernel, "stride {stride}: not our kernel's output");
        }
        assert!(relative(&ours.0, &theirs.0) < 1e-5, "forward, stride {stride}, bias {bias}");
        assert!(relative(&ours.1, &theirs.1) < 1e-5, "input gradient, stride {stride}, bias {bias}");
        assert!(relative(&ours.2, &theirs.2) < 1e-5, "weight gradient, stride {stride}, bias {bias}");
    }
    // Parameters not tracked (M2m's frozen f and g): only the input gradient, still right.
    let conv = layer::<Cpu>(1, false, 20);
    let frozen = conv.clone().no_grad();
    let x = m2m_tests::random::<Cpu, 4>([2, 3, 6, 6], Distribution::Normal(0.0, 1.0), 4, &device).require_grad();
    let ours = conv2d(&frozen, x.clone()).sum().backward();
    let theirs = conv.forward(x.clone()).sum().backward();
    assert!(frozen.weight.grad(&ours).is_none());
    assert!(relative(&host(x.grad(&ours).unwrap()), &host(x.grad(&theirs).unwrap())) < 1e-5);
    // The inner backend (evaluation without autodiff) runs the same kernels.
    let inner = conv.weight.val().inner();
    let plain = Conv2d::<Flex> { weight: Param::from_tensor(inner), ..layer::<Flex>(1, false, 21) };
    let xi = x.inner();
    let ours = host(conv2d(&plain, xi.clone()));
    let shape = ConvShape { n: 2, c_in: 3, h: 6, w: 6, c_out: 5, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
    assert!(ours == conv_host_forward(&shape, &host(xi.clone()), &host(plain.weight.val())));
    assert!(relative(&ours, &host(plain.forward(xi))) < 1e-5);
}

#[test]
fn the_weight_gradient_does_not_depend_on_the_thread_count() {
    let s = ConvShape { n: 37, c_in: 8, h: 10, w: 10, c_out: 8, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
    let device = Default::default();
    let x = host(m2m_tests::random::<Flex, 4>([s.n, s.c_in, s.h, s.w], Distribution::Normal(0.0, 1.0), 5, &device));
    let g = host(m2m_tests::random::<Flex, 4>([s.n, s.c_out, s.h, s.w], Distribution::Normal(0.0, 1.0), 6, &device));
    let on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| kernels::weight_grad(&s, &x, &g))
    };
    let one = on(1);
    for threads in [2, 3, 5] {
        assert!(on(threads) == one, "{threads} threads");
    }
}

fn conv_host_forward(s: &ConvShape, x: &[f32], w: &[f32]) -> Vec<f32> {
    m2m_burn_plugin::kernels::conv::host_forward(s, x, w, &kernels::Epilogue::NONE)
}
