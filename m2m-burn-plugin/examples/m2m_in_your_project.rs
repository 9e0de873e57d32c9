//! Adding M2m to an existing burn-train project.
//!
//! A plain burn-train project has a model with `TrainStep`/`InferenceStep`, a data
//! loader and `SupervisedTraining`. M2m needs four additions, marked `// M2m:` below:
//!
//! 1. the model implements `Classifier` (images in [0, 1] to logits with an explicit
//!    train/eval mode; use this crate's `BatchNorm2d`, which honours eval mode on
//!    autodiff backends);
//! 2. the model carries an `M2mHandle` in a `#[module(skip)]` field;
//! 3. the train step calls `handle.apply(self, images, labels)` before its forward;
//! 4. the training loader publishes its epoch to the handle and switches to the
//!    class-balanced sampler at the deferred epoch.
//!
//! Run it (synthetic data, seconds): `cargo run --release --example m2m_in_your_project`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::SgdConfig;
use burn::tensor::activation::relu;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ClassificationOutput, InferenceStep, Learner, SupervisedTraining, TrainOutput, TrainStep};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::m2m::{M2m, M2mHandle};
use m2m_burn_plugin::model::{BatchNorm2d, Classifier, Mode};
use m2m_burn_plugin::train::LogRenderer;
use m2m_core::sampling::{ClassIndex, SamplerKind};
use m2m_core::translation::TranslationConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

// ------------------------------------------------------------------ the model
#[derive(Module, Debug)]
pub struct MyNet<B: Backend> {
    conv: Conv2d<B>,
    bn: BatchNorm2d<B>, // M2m (1): eval mode must work on autodiff backends
    head: Linear<B>,
    #[module(skip)]
    m2m: Option<M2mHandle>, // M2m (2)
}

impl<B: Backend> MyNet<B> {
    pub fn new(device: &B::Device) -> Self {
        Self {
            conv: Conv2dConfig::new([1, 16], [3, 3]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device),
            bn: BatchNorm2d::new(16, device),
            head: LinearConfig::new(16, 3).init(device),
            m2m: None,
        }
    }
}

// M2m (1): the one trait M2m needs from a model.
impl<B: Backend> Classifier<B> for MyNet<B> {
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        let x = relu(self.bn.forward(self.conv.forward(images), mode));
        let [n, c, _, _] = x.dims();
        self.head.forward(x.mean_dim(3).mean_dim(2).reshape([n, c]))
    }
    fn num_classes(&self) -> usize {
        3
    }
}

/// Translations attempted and accepted, for the summary at the end.
static ATTEMPTED: AtomicUsize = AtomicUsize::new(0);
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    images: Tensor<B, 4>,
    labels: Vec<usize>,
}

impl<B: Backend> Batch<B> {
    fn targets(&self) -> Tensor<B, 1, Int> {
        let v: Vec<i64> = self.labels.iter().map(|&y| y as i64).collect();
        Tensor::from_data(TensorData::new(v, [self.labels.len()]), &self.images.device())
    }
}

impl<B: AutodiffBackend> TrainStep for MyNet<B> {
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;

    fn step(&self, batch: Batch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let targets = batch.targets();
        // M2m (3): translated majority seeds replace some minority slots (labels unchanged).
        let images = match &self.m2m {
            Some(m2m) => {
                let (images, generation) = m2m.apply(self, batch.images, &batch.labels);
                if let Some(g) = generation {
                    ATTEMPTED.fetch_add(g.planned.len(), Ordering::Relaxed);
                    ACCEPTED.fetch_add(g.accepted_slots().count(), Ordering::Relaxed);
                }
                images
            }
            None => batch.images,
        };
        let logits = self.logits(images, Mode::Train);
        let loss = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), targets.clone());
        TrainOutput::new(self, loss.backward(), ClassificationOutput::new(loss, logits, targets))
    }
}

impl<B: Backend> InferenceStep for MyNet<B> {
    type Input = Batch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: Batch<B>) -> ClassificationOutput<B> {
        let targets = batch.targets();
        let logits = self.logits(batch.images, Mode::Eval);
        let loss = CrossEntropyLossConfig::new().init(&logits.device()).forward(logits.clone(), targets.clone());
        ClassificationOutput::new(loss, logits, targets)
    }
}

// ------------------------------------------------------------------- the data
/// Synthetic imbalanced data (8x8 gray images): class k is brighter; 400 / 60 / 12 images.
fn dataset() -> (Arc<Vec<f32>>, Arc<Vec<usize>>) {
    let mut rng = StdRng::seed_from_u64(0);
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (k, n) in [400usize, 60, 12].into_iter().enumerate() {
        for _ in 0..n {
            pixels.extend((0..64).map(|_| (0.3 * k as f32 + 0.3 * rng.random::<f32>()).min(1.0)));
            labels.push(k);
        }
    }
    (Arc::new(pixels), Arc::new(labels))
}

/// burn-train calls `iter()` once per epoch.
struct Loader<B: Backend> {
    pixels: Arc<Vec<f32>>,
    labels: Arc<Vec<usize>>,
    /// M2m (4): the class-balanced sampler from this epoch on.
    balanced_from: usize,
    next_epoch: Arc<AtomicUsize>,
    /// M2m (4): where the current epoch is published (the training loader only).
    gate: Option<Arc<AtomicUsize>>,
    device: B::Device,
}

struct Iter<B: Backend> {
    batches: std::vec::IntoIter<Batch<B>>,
    done: usize,
    total: usize,
}

impl<B: Backend> Iterator for Iter<B> {
    type Item = Batch<B>;
    fn next(&mut self) -> Option<Batch<B>> {
        let b = self.batches.next()?;
        self.done += 1;
        Some(b)
    }
}

impl<B: Backend> DataLoaderIterator<Batch<B>> for Iter<B> {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.total)
    }
}

impl<B: Backend> DataLoader<B, Batch<B>> for Loader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<Batch<B>> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.store(epoch, Ordering::SeqCst);
        }
        let kind = if epoch >= self.balanced_from { SamplerKind::ClassBalanced } else { SamplerKind::Natural };
        let order = ClassIndex::new(&self.labels, 3).epoch_order(kind, &mut StdRng::seed_from_u64(epoch as u64));
        let batches: Vec<Batch<B>> = order
            .chunks(64)
            .map(|idx| {
                let px: Vec<f32> = idx.iter().flat_map(|&i| self.pixels[i * 64..(i + 1) * 64].iter().copied()).collect();
                Batch {
                    images: Tensor::from_data(TensorData::new(px, [idx.len(), 1, 8, 8]), &self.device),
                    labels: idx.iter().map(|&i| self.labels[i]).collect(),
                }
            })
            .collect();
        let total = batches.len();
        Box::new(Iter { batches: batches.into_iter(), done: 0, total })
    }
    fn num_items(&self) -> usize {
        self.labels.len()
    }
    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, Batch<B>>> {
        Arc::new(Loader {
            pixels: self.pixels.clone(),
            labels: self.labels.clone(),
            balanced_from: self.balanced_from,
            next_epoch: self.next_epoch.clone(),
            gate: self.gate.clone(),
            device: device.clone(),
        })
    }
    fn slice(&self, _: usize, _: usize) -> Arc<dyn DataLoader<B, Batch<B>>> {
        self.to_device(&self.device)
    }
}

fn main() {
    type Inner = <Cpu as AutodiffBackend>::InnerBackend;
    let device = Default::default();
    let (pixels, labels) = dataset();
    let counts = ClassIndex::new(&labels, 3).counts();
    let from_epoch = 2;

    // M2m (2): a baseline classifier g and the generator. Here g is an untrained model
    // to keep the example short; in practice load an ERM checkpoint
    // (`m2m_burn_plugin::model::load_classifier`), or let `m2m train` train and cache one.
    let g = MyNet::<Cpu>::new(&device);
    let generator = M2m::new(&g, counts, TranslationConfig { gamma: 0.3, steps: 3, ..Default::default() });
    let handle = M2mHandle::new(generator, from_epoch, 7);
    let mut model = MyNet::<Cpu>::new(&device);
    model.m2m = Some(handle.clone());

    let train = Arc::new(Loader::<Cpu> {
        pixels: pixels.clone(),
        labels: labels.clone(),
        balanced_from: from_epoch,
        next_epoch: Arc::new(AtomicUsize::new(0)),
        gate: Some(handle.epoch_gate()), // M2m (4)
        device,
    });
    let valid = Arc::new(Loader::<Inner> {
        pixels,
        labels,
        balanced_from: usize::MAX,
        next_epoch: Arc::new(AtomicUsize::new(0)),
        gate: None,
        device,
    });
    let result = SupervisedTraining::new(std::env::temp_dir().join("m2m-example"), train, valid)
        .metrics((AccuracyMetric::<burn::backend::Flex>::new(), LossMetric::<burn::backend::Flex>::new()))
        .renderer(LogRenderer::new(std::time::Duration::from_secs(5)))
        .with_application_logger(None)
        .num_epochs(4)
        .launch(Learner::new(model, SgdConfig::new().init(), 0.05));
    let probe = Tensor::<Inner, 4>::full([1, 1, 8, 8], 0.75, &device);
    let logits: Vec<f32> = result.model.logits(probe, Mode::Eval).into_data().to_vec().unwrap();
    println!(
        "trained with M2m from epoch {from_epoch}: {} of {} translations accepted; logits of a bright image: {logits:?}",
        ACCEPTED.load(Ordering::Relaxed),
        ATTEMPTED.load(Ordering::Relaxed)
    );
}
