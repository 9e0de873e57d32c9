//! Batches and the loaders that make them: the training loader follows the recipe's
//! sampler plan epoch by epoch (natural, then class-balanced from the deferred epoch),
//! augments on a prefetch thread, and is what M2m's hook receives.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use m2m_core::sampling::{epoch_batches, ClassIndex, SamplerKind};
use m2m_core::seed::ChaCha12Rng;
use m2m_core::seed::{derive_seed, stream_rng, SeedStream};
use m2m_core::smote::smote;
use rand::SeedableRng;

use crate::data::{augment_into, Augmentation, ImageSet};
use crate::recipe::SamplerPlan;

/// One batch on a device, with its labels also kept on the host so that samplers and
/// M2m can read them without a device round trip.
#[derive(Clone, Debug)]
pub struct ImageBatch<B: Backend> {
    /// `[n, c, h, w]`, pixels in [0, 1].
    pub images: Tensor<B, 4>,
    pub targets: Tensor<B, 1, Int>,
    pub labels: Vec<usize>,
}

/// So that the hook can train our own models with their own `TrainStep`.
impl<B: Backend> crate::hook::M2mBatch<B> for ImageBatch<B> {
    fn images(&self) -> Tensor<B, 4> {
        self.images.clone()
    }
    fn with_images(self, images: Tensor<B, 4>) -> Self {
        Self { images, ..self }
    }
}

/// A batch assembled on the host.
struct HostBatch {
    pixels: Vec<f32>,
    labels: Vec<usize>,
}

impl HostBatch {
    fn build(set: &ImageSet, indices: &[usize], aug: Augmentation, rng: &mut ChaCha12Rng) -> Self {
        let n = set.image_len();
        let mut pixels = vec![0.0f32; indices.len() * n];
        for (slot, &i) in indices.iter().enumerate() {
            augment_into(
                set.image(i),
                (set.channels, set.height, set.width),
                aug,
                rng,
                &mut pixels[slot * n..(slot + 1) * n],
            );
        }
        Self { pixels, labels: indices.iter().map(|&i| set.labels[i]).collect() }
    }

    fn into_device<B: Backend>(self, set: &ImageSet, device: &B::Device) -> ImageBatch<B> {
        let n = self.labels.len();
        let images = Tensor::from_data(TensorData::new(self.pixels, [n, set.channels, set.height, set.width]), device);
        let targets = m2m_core::translation::int_tensor(&self.labels, device);
        ImageBatch { images, targets, labels: self.labels }
    }
}

/// The training loader. Its epoch (0-based) is set by the training loop before `iter()`.
pub struct TrainLoader<B: Backend> {
    /// The training set; with the SMOTE sampler, followed by the synthetic samples.
    set: Arc<ImageSet>,
    /// Number of real training samples (the epoch length in every sampler).
    len: usize,
    index: Arc<ClassIndex>,
    plan: SamplerPlan,
    augmentation: Augmentation,
    batch_size: usize,
    seed: u64,
    epoch: AtomicUsize,
    device: B::Device,
}

impl<B: Backend> TrainLoader<B> {
    /// With the SMOTE sampler, the synthetic samples are made here, once per run, from
    /// the run's seed.
    pub fn new(
        set: Arc<ImageSet>,
        plan: SamplerPlan,
        augmentation: Augmentation,
        batch_size: usize,
        seed: u64,
        device: B::Device,
    ) -> Self {
        let len = set.len();
        let mut index = ClassIndex::new(&set.labels, set.num_classes);
        let set = if plan.value == SamplerKind::Smote {
            let synthetic = smote(
                &set.pixels,
                set.image_len(),
                &set.labels,
                set.num_classes,
                &mut stream_rng(seed, 0, SeedStream::Smote),
            );
            tracing::info!("SMOTE: {} synthetic images balance the classes", synthetic.labels.len());
            index = index.with_synthetic(synthetic.labels.len());
            Arc::new(set.extended(synthetic.pixels, synthetic.labels))
        } else {
            set
        };
        Self {
            set,
            len,
            index: Arc::new(index),
            plan,
            augmentation,
            batch_size,
            seed,
            epoch: AtomicUsize::new(0),
            device,
        }
    }

    pub fn set_epoch(&self, epoch: usize) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    pub fn sampler_at(&self, epoch: usize) -> SamplerKind {
        self.plan.kind_at(epoch)
    }

    pub fn batches_per_epoch(&self) -> usize {
        m2m_core::sampling::batches_per_epoch(self.len, self.batch_size)
    }

    /// Batches of one epoch, built on a prefetch thread two batches ahead.
    pub fn epoch_iter(&self, epoch: usize) -> PrefetchIter<B> {
        let batches = epoch_batches(&self.index, &self.plan, self.seed, epoch, self.batch_size);
        let total = batches.iter().map(Vec::len).sum();
        let (tx, rx) = mpsc::sync_channel::<HostBatch>(2);
        let set = self.set.clone();
        let aug = self.augmentation;
        let seed = derive_seed(self.seed, epoch, SeedStream::Augmentation);
        std::thread::Builder::new()
            .name("m2m-prefetch".into())
            .spawn(move || {
                let mut rng = ChaCha12Rng::seed_from_u64(seed);
                for b in batches {
                    if tx.send(HostBatch::build(&set, &b, aug, &mut rng)).is_err() {
                        return; // the consumer stopped early
                    }
                }
            })
            .expect("spawning the prefetch thread");
        PrefetchIter {
            rx,
            set: self.set.clone(),
            device: self.device.clone(),
            done: 0,
            total,
            waited: std::time::Duration::ZERO,
        }
    }
}

pub struct PrefetchIter<B: Backend> {
    rx: mpsc::Receiver<HostBatch>,
    set: Arc<ImageSet>,
    device: B::Device,
    /// Images handed out so far and in the whole epoch (burn's loaders count items, and
    /// progress renderers show them as images per second).
    done: usize,
    total: usize,
    /// Time the training loop spent waiting for the prefetch thread.
    waited: std::time::Duration,
}

impl<B: Backend> PrefetchIter<B> {
    /// How long the consumer waited for batches so far: near zero when assembling and
    /// augmenting the next batch takes less than a training step.
    pub fn waited(&self) -> std::time::Duration {
        self.waited
    }
}

impl<B: Backend> Iterator for PrefetchIter<B> {
    type Item = ImageBatch<B>;
    fn next(&mut self) -> Option<ImageBatch<B>> {
        let started = std::time::Instant::now();
        let host = self.rx.recv().ok();
        self.waited += started.elapsed();
        let host = host?;
        self.done += host.labels.len();
        Some(host.into_device(&self.set, &self.device))
    }
}

impl<B: Backend> DataLoaderIterator<ImageBatch<B>> for PrefetchIter<B> {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.total)
    }
}

impl<B: Backend> DataLoader<B, ImageBatch<B>> for TrainLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch<B>> + 'a> {
        Box::new(self.epoch_iter(self.epoch.load(Ordering::SeqCst)))
    }
    fn num_items(&self) -> usize {
        self.len
    }
    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, ImageBatch<B>>> {
        Arc::new(Self {
            set: self.set.clone(),
            len: self.len,
            index: self.index.clone(),
            plan: self.plan,
            augmentation: self.augmentation,
            batch_size: self.batch_size,
            seed: self.seed,
            epoch: AtomicUsize::new(self.epoch.load(Ordering::SeqCst)),
            device: device.clone(),
        })
    }
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, ImageBatch<B>>> {
        let idx: Vec<usize> = (start..end.min(self.len)).collect();
        Arc::new(Self::new(
            Arc::new(self.set.select(&idx)),
            self.plan,
            self.augmentation,
            self.batch_size,
            self.seed,
            self.device.clone(),
        ))
    }
}

/// Fixed-order, unaugmented batches for evaluation.
pub struct EvalLoader<B: Backend> {
    set: Arc<ImageSet>,
    batch_size: usize,
    device: B::Device,
}

impl<B: Backend> EvalLoader<B> {
    pub fn new(set: Arc<ImageSet>, batch_size: usize, device: B::Device) -> Self {
        Self { set, batch_size, device }
    }

    pub fn batches(&self) -> impl Iterator<Item = ImageBatch<B>> + '_ {
        let n = self.set.len();
        let mut rng = ChaCha12Rng::seed_from_u64(0); // unused: no augmentation
        (0..n).step_by(self.batch_size).map(move |start| {
            let idx: Vec<usize> = (start..(start + self.batch_size).min(n)).collect();
            HostBatch::build(&self.set, &idx, Augmentation::NONE, &mut rng).into_device(&self.set, &self.device)
        })
    }

    pub fn num_batches(&self) -> usize {
        self.set.len().div_ceil(self.batch_size)
    }
}

struct EvalIter<'a, B: Backend> {
    inner: Box<dyn Iterator<Item = ImageBatch<B>> + 'a>,
    done: usize,
    total: usize,
}

impl<B: Backend> Iterator for EvalIter<'_, B> {
    type Item = ImageBatch<B>;
    fn next(&mut self) -> Option<ImageBatch<B>> {
        let b = self.inner.next()?;
        self.done += 1;
        Some(b)
    }
}

impl<B: Backend> DataLoaderIterator<ImageBatch<B>> for EvalIter<'_, B> {
    fn progress(&self) -> Progress {
        Progress::new(self.done, self.total)
    }
}

impl<B: Backend> DataLoader<B, ImageBatch<B>> for EvalLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch<B>> + 'a> {
        Box::new(EvalIter { inner: Box::new(self.batches()), done: 0, total: self.num_batches() })
    }
    fn num_items(&self) -> usize {
        self.set.len()
    }
    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, ImageBatch<B>>> {
        Arc::new(Self::new(self.set.clone(), self.batch_size, device.clone()))
    }
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, ImageBatch<B>>> {
        let idx: Vec<usize> = (start..end.min(self.set.len())).collect();
        Arc::new(Self::new(Arc::new(self.set.select(&idx)), self.batch_size, self.device.clone()))
    }
}
