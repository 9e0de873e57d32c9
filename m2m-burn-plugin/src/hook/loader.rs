//! The training data loader the hook hands burn-train: the user's `Dataset` and `Batcher`
//! in M2m's order (natural before the deferred epoch, class-balanced from it on), each
//! epoch drawn from its own seeded stream, exactly as the `m2m` CLI draws it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use m2m_core::sampling::{batches_per_epoch, epoch_batches, ClassIndex, SamplerKind};
use m2m_core::weighting::Deferred;

use super::batch::M2mInput;

/// burn-train calls `iter()` once per epoch; this counts those calls, so the loader and
/// the model wrapper agree on the epoch without burn telling either.
#[derive(Debug, Default)]
pub(super) struct EpochCounter {
    next: AtomicUsize,
}

impl EpochCounter {
    pub(super) fn starting_at(epoch: usize) -> Self {
        Self { next: AtomicUsize::new(epoch) }
    }

    fn begin(&self) -> usize {
        self.next.fetch_add(1, Ordering::SeqCst)
    }
}

/// The user's data set seen through M2m's sampler.
pub struct M2mDataLoader<B: Backend, I, O> {
    dataset: Arc<dyn Dataset<I>>,
    batcher: Arc<dyn Batcher<B, I, O>>,
    /// The class of every data set item, by data set index (read once, at start-up).
    labels: Arc<Vec<usize>>,
    /// Data set index of each position the sampler draws (all items, or a slice).
    members: Arc<Vec<usize>>,
    /// Class index over positions in `members`.
    index: Arc<ClassIndex>,
    plan: Deferred<SamplerKind>,
    seed: u64,
    batch_size: usize,
    epochs: Arc<EpochCounter>,
    device: B::Device,
}

impl<B: Backend, I, O> M2mDataLoader<B, I, O> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        dataset: Arc<dyn Dataset<I>>,
        batcher: Arc<dyn Batcher<B, I, O>>,
        labels: Vec<usize>,
        num_classes: usize,
        plan: Deferred<SamplerKind>,
        seed: u64,
        batch_size: usize,
        epochs: Arc<EpochCounter>,
        device: B::Device,
    ) -> Self {
        Self {
            dataset,
            batcher,
            members: Arc::new((0..labels.len()).collect()),
            index: Arc::new(ClassIndex::new(&labels, num_classes)),
            labels: Arc::new(labels),
            plan,
            seed,
            batch_size,
            epochs,
            device,
        }
    }

    /// The batches of `epoch` as data set indices (what `iter()` batches, in order).
    pub fn epoch_indices(&self, epoch: usize) -> Vec<Vec<usize>> {
        epoch_batches(&self.index, &self.plan, self.seed, epoch, self.batch_size)
            .into_iter()
            .map(|b| b.into_iter().map(|p| self.members[p]).collect())
            .collect()
    }

    /// Training items per class.
    pub fn class_counts(&self) -> Vec<usize> {
        self.index.counts()
    }

    /// The number of batches `iter()` gives per epoch: the items divided by the batch
    /// size, rounded up.
    pub fn batches_per_epoch(&self) -> usize {
        batches_per_epoch(self.members.len(), self.batch_size)
    }
}

/// One epoch's batches, built in order on a prefetch thread two batches ahead of the
/// training step (the user's `Batcher` runs off the critical path).
struct EpochIter<O> {
    rx: mpsc::Receiver<M2mInput<O>>,
    worker: Option<std::thread::JoinHandle<()>>,
    done: usize,
    batch_size: usize,
    len: usize,
}

impl<O> Iterator for EpochIter<O> {
    type Item = M2mInput<O>;
    fn next(&mut self) -> Option<M2mInput<O>> {
        match self.rx.recv() {
            Ok(input) => {
                self.done += 1;
                Some(input)
            }
            Err(_) => {
                // The worker is done; if it panicked (a data set or batcher failing),
                // raise that here rather than end the epoch early without a word.
                if let Some(Err(panic)) = self.worker.take().map(|w| w.join()) {
                    std::panic::resume_unwind(panic);
                }
                None
            }
        }
    }
}

impl<O> DataLoaderIterator<M2mInput<O>> for EpochIter<O> {
    fn progress(&self) -> Progress {
        Progress::new((self.done * self.batch_size).min(self.len), self.len)
    }
}

impl<B: Backend, I: Send + Sync + 'static, O: Send + 'static> DataLoader<B, M2mInput<O>> for M2mDataLoader<B, I, O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<M2mInput<O>> + 'a> {
        let epoch = self.epochs.begin();
        let batches = self.epoch_indices(epoch);
        let (tx, rx) = mpsc::sync_channel(2);
        let (dataset, batcher, labels, device) =
            (self.dataset.clone(), self.batcher.clone(), self.labels.clone(), self.device.clone());
        let worker = std::thread::Builder::new()
            .name("m2m-hook-prefetch".into())
            .spawn(move || {
                for (iteration, indices) in batches.into_iter().enumerate() {
                    let items: Vec<I> = indices
                        .iter()
                        .map(|&i| {
                            dataset.get(i).unwrap_or_else(|| {
                                panic!("the data set returned no item {i} although its len() is {}", dataset.len())
                            })
                        })
                        .collect();
                    let labels = indices.iter().map(|&i| labels[i]).collect();
                    if tx.send(M2mInput { batch: batcher.batch(items, &device), labels, epoch, iteration }).is_err() {
                        return; // the training loop stopped early
                    }
                }
            })
            .expect("spawning the prefetch thread");
        Box::new(EpochIter { rx, worker: Some(worker), done: 0, batch_size: self.batch_size, len: self.members.len() })
    }

    fn num_items(&self) -> usize {
        self.members.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, M2mInput<O>>> {
        Arc::new(Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            labels: self.labels.clone(),
            members: self.members.clone(),
            index: self.index.clone(),
            plan: self.plan,
            seed: self.seed,
            batch_size: self.batch_size,
            epochs: self.epochs.clone(),
            device: device.clone(),
        })
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<B, M2mInput<O>>> {
        let end = end.min(self.members.len());
        let members: Vec<usize> = self.members[start.min(end)..end].to_vec();
        let labels: Vec<usize> = members.iter().map(|&i| self.labels[i]).collect();
        Arc::new(Self {
            dataset: self.dataset.clone(),
            batcher: self.batcher.clone(),
            labels: self.labels.clone(),
            index: Arc::new(ClassIndex::new(&labels, self.index.counts().len())),
            members: Arc::new(members),
            plan: self.plan,
            seed: self.seed,
            batch_size: self.batch_size,
            epochs: self.epochs.clone(),
            device: self.device.clone(),
        })
    }
}
