//! ResNet-32 for CIFAR-sized inputs as the M2m code defines it (algorithm.md §6.1): a 3x3 stem,
//! 3 stages of 5 basic blocks (widths 16/32/64), option-A parameter-free shortcuts,
//! global average pooling and a linear or cosine head. He (fan-out) initialisation.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::backend::Backend;
use burn::tensor::module::avg_pool2d;
use burn::tensor::Tensor;

use super::conv_bn::conv_bn;
use super::{BatchNorm2d, Mode, NormedLinear, Then, Weights};

pub(crate) fn conv3x3<B: Backend>(
    cin: usize,
    cout: usize,
    stride: usize,
    weights: Weights,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(false)
        // N(0, sqrt(2 / (k*k*out))): the M2m code's He fan-out init.
        .with_initializer(weights.or(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true }))
        .init(device)
}

/// ResNet-32's residual block: two 3x3 convolutions with BatchNorm, and the identity
/// shortcut (zero-padded channels and stride 2 where the stage changes, option A).
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    pub(crate) conv_a: Conv2d<B>,
    pub(crate) bn_a: BatchNorm2d<B>,
    pub(crate) conv_b: Conv2d<B>,
    pub(crate) bn_b: BatchNorm2d<B>,
    /// Channels to append with zeros on the shortcut (option A); 0 when shapes match.
    extra_channels: usize,
    stride: usize,
}

impl<B: Backend> BasicBlock<B> {
    fn new(cin: usize, cout: usize, stride: usize, weights: Weights, device: &B::Device) -> Self {
        Self {
            conv_a: conv3x3(cin, cout, stride, weights, device),
            bn_a: BatchNorm2d::new(cout, device),
            conv_b: conv3x3(cout, cout, 1, weights, device),
            bn_b: BatchNorm2d::new(cout, device),
            extra_channels: cout - cin,
            stride,
        }
    }

    fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> Tensor<B, 4> {
        let out = conv_bn(&self.conv_a, &self.bn_a, x.clone(), mode, Then::Relu);
        let shortcut = if self.stride == 1 && self.extra_channels == 0 {
            x
        } else {
            // M2m's DownsampleA: AvgPool2d(kernel 1, stride 2), then [x, zeros] on channels.
            let sub = avg_pool2d(x, [1, 1], [self.stride, self.stride], [0, 0], true, false);
            let [n, _, h, w] = sub.dims();
            let zeros = Tensor::zeros([n, self.extra_channels, h, w], &sub.device());
            Tensor::cat(vec![sub, zeros], 1)
        };
        conv_bn(&self.conv_b, &self.bn_b, out, mode, Then::AddRelu(shortcut))
    }
}

/// The classifier head: plain linear or cosine ("normed linear", used by LDAM).
#[derive(Module, Debug)]
pub enum Head<B: Backend> {
    /// burn's `Linear` with a bias: unbounded logits.
    Linear(Linear<B>),
    /// Cosine similarity between the features and a unit direction per class: logits in
    /// [-1, 1], no bias.
    Cosine(NormedLinear<B>),
}

impl<B: Backend> Head<B> {
    pub(crate) fn new(features: usize, classes: usize, cosine: bool, weights: Weights, device: &B::Device) -> Self {
        if cosine {
            Head::Cosine(NormedLinear::new(features, classes, weights, device))
        } else {
            // kaiming_normal_ (fan-in, gain sqrt 2) on the weight, bias 0 (M2m code).
            let mut linear = LinearConfig::new(features, classes)
                .with_initializer(weights.or(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: false }))
                .init(device);
            linear.bias = Some(Param::from_tensor(Tensor::zeros([classes], device)));
            Head::Linear(linear)
        }
    }

    /// Logits `[batch, classes]` from pooled features `[batch, features]`.
    pub fn forward(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        match self {
            Head::Linear(l) => l.forward(h),
            Head::Cosine(l) => l.forward(h),
        }
    }
}

/// ResNet-32 as in the M2m reference (see the module documentation); built through
/// [`ModelSpec`](super::ModelSpec), which puts input normalisation in front of it.
#[derive(Module, Debug)]
pub struct ResNet32<B: Backend> {
    pub(crate) conv_1_3x3: Conv2d<B>,
    pub(crate) bn_1: BatchNorm2d<B>,
    pub(crate) stages: Vec<BasicBlock<B>>,
    pub(crate) head: Head<B>,
}

impl<B: Backend> ResNet32<B> {
    pub(crate) fn new(
        in_channels: usize,
        classes: usize,
        cosine_head: bool,
        weights: Weights,
        device: &B::Device,
    ) -> Self {
        let mut stages = Vec::with_capacity(15);
        let mut cin = 16;
        for (stage, &width) in [16usize, 32, 64].iter().enumerate() {
            for block in 0..5 {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                stages.push(BasicBlock::new(cin, width, stride, weights, device));
                cin = width;
            }
        }
        Self {
            conv_1_3x3: conv3x3(in_channels, 16, 1, weights, device),
            bn_1: BatchNorm2d::new(16, device),
            stages,
            head: Head::new(64, classes, cosine_head, weights, device),
        }
    }

    /// Logits `[batch, classes]` from normalised images `[batch, channels, height, width]`;
    /// `mode` selects BatchNorm's statistics as in [`BatchNorm2d::forward`].
    pub fn forward(&self, x: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        let mut x = conv_bn(&self.conv_1_3x3, &self.bn_1, x, mode, Then::Relu);
        for block in &self.stages {
            x = block.forward(x, mode);
        }
        let [n, c, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([n, c]);
        self.head.forward(pooled)
    }
}
