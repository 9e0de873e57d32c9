//! A small, fast CNN for quick CPU runs: three 3x3 convolutions (32/64/128 channels,
//! stride 2 after the first), BatchNorm, ReLU, global average pooling and a head.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::conv_bn::conv_bn;
use super::resnet::{conv3x3, Head};
use super::{BatchNorm2d, Mode, Then, Weights};

/// The small CNN of the module documentation; built through
/// [`ModelSpec`](super::ModelSpec), which puts input normalisation in front of it.
#[derive(Module, Debug)]
pub struct SmallCnn<B: Backend> {
    convs: Vec<Conv2d<B>>,
    bns: Vec<BatchNorm2d<B>>,
    head: Head<B>,
}

impl<B: Backend> SmallCnn<B> {
    pub(crate) fn new(
        in_channels: usize,
        classes: usize,
        cosine_head: bool,
        weights: Weights,
        device: &B::Device,
    ) -> Self {
        let widths = [32usize, 64, 128];
        let mut cin = in_channels;
        let (mut convs, mut bns) = (Vec::new(), Vec::new());
        for (i, &w) in widths.iter().enumerate() {
            convs.push(conv3x3(cin, w, if i == 0 { 1 } else { 2 }, weights, device));
            bns.push(BatchNorm2d::new(w, device));
            cin = w;
        }
        Self { convs, bns, head: Head::new(cin, classes, cosine_head, weights, device) }
    }

    /// Logits `[batch, classes]` from normalised images `[batch, channels, height, width]`;
    /// `mode` selects BatchNorm's statistics as in [`BatchNorm2d::forward`].
    pub fn forward(&self, mut x: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        for (conv, bn) in self.convs.iter().zip(&self.bns) {
            x = conv_bn(conv, bn, x, mode, Then::Relu);
        }
        let [n, c, _, _] = x.dims();
        self.head.forward(x.mean_dim(3).mean_dim(2).reshape([n, c]))
    }
}
