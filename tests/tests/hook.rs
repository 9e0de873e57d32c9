//! The burn-train hook: it gives the same batches and translations as the `m2m` CLI's
//! loop for the same seed, refuses models that would translate with batch statistics or
//! dropout, and its drop-in layers match burn's (arithmetic and records).

use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{AutodiffModule, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor, TensorData};
use burn::train::{ClassificationOutput, TrainOutput, TrainStep};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::{Augmentation, ImageSet};
use m2m_burn_plugin::hook::{check_eval_mode, EvalModeError, HookError, M2mHook, M2mSettings};
use m2m_burn_plugin::m2m::{M2m, M2mSchedule};
use m2m_burn_plugin::model::{Architecture, ModelSpec, Net};
use m2m_burn_plugin::train::{ImageBatch, TrainLoader};
use m2m_core::classifier::{eval_scope, Classifier, Mode};
use m2m_core::sampling::SamplerKind;
use m2m_core::translation::{int_tensor, TranslationParams};
use m2m_core::weighting::Deferred;
use m2m_tests::bytes;

type Inner = <Cpu as AutodiffBackend>::InnerBackend;

/// A user's data set item: raw pixels and a label.
#[derive(Clone, Debug)]
struct Item {
    pixels: Vec<u8>,
    label: usize,
}

/// A user's batcher: the same arithmetic as the CLI's loader without augmentation.
#[derive(Clone)]
struct ItemBatcher;

impl<B: Backend> Batcher<B, Item, ImageBatch<B>> for ItemBatcher {
    fn batch(&self, items: Vec<Item>, device: &B::Device) -> ImageBatch<B> {
        let n = items.len();
        let px: Vec<f32> = items.iter().flat_map(|it| it.pixels.iter().map(|&v| v as f32 / 255.0)).collect();
        let labels: Vec<usize> = items.iter().map(|it| it.label).collect();
        ImageBatch {
            images: Tensor::from_data(TensorData::new(px, [n, 1, 28, 28]), device),
            targets: int_tensor(&labels, device),
            labels,
        }
    }
}

/// Records the images its train step receives (what the hook handed it).
static SEEN: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());
/// Held by a test that reads [`SEEN`] for as long as it trains through a [`Spy`].
static SEEN_BY_ONE_TEST: Mutex<()> = Mutex::new(());

#[derive(Module, Debug)]
struct Spy<B: Backend> {
    net: Net<B>,
}

impl<B: Backend> Classifier<B> for Spy<B> {
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        self.net.logits(images, mode)
    }
}

impl<B: AutodiffBackend> TrainStep for Spy<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: ImageBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        SEEN.lock().unwrap().push(batch.images.clone().into_data().to_vec().unwrap());
        let logits = self.net.logits(batch.images, Mode::Eval);
        let loss = logits.clone().mean();
        TrainOutput::new(self, loss.backward(), ClassificationOutput::new(loss, logits, batch.targets))
    }
}

fn spec() -> ModelSpec {
    ModelSpec {
        architecture: Architecture::SmallCnn,
        cosine_head: false,
        in_channels: 1,
        num_classes: 3,
        mean: vec![0.3],
        std: vec![0.3],
    }
}

#[test]
fn the_hook_and_the_cli_give_the_same_batches_and_translations() {
    let _seen = SEEN_BY_ONE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    let device = Default::default();
    // 40 / 12 / 4 images of three classes, labels interleaved.
    let labels: Vec<usize> = (0..40).map(|_| 0).chain((0..12).map(|_| 1)).chain((0..4).map(|_| 2)).collect();
    let pixels = bytes(labels.len() * 784, 3);
    let set = ImageSet::new(1, 28, 28, 3, pixels.clone(), labels.clone()).unwrap();
    let counts = vec![40, 12, 4];
    let g: Net<Cpu> = spec().init_seeded(1, &device);
    let f: Net<Cpu> = spec().init_seeded(2, &device);
    // gamma ~ 0, beta 0.5: nearly every planned translation is accepted.
    let config = TranslationParams { gamma: 1e-6, beta: 0.5, steps: 2, ..Default::default() }.check().unwrap();
    let (seed, from_epoch, batch, epochs) = (11, 1, 16, 3);

    // The CLI's path: its loader, the schedule's per-epoch stream, the generator.
    let loader = TrainLoader::<Cpu>::new(
        Arc::new(set),
        Deferred::new(SamplerKind::ClassBalanced, from_epoch),
        Augmentation::NONE,
        batch,
        seed,
        device,
    );
    let schedule = M2mSchedule { from_epoch, seed };
    let m2m = M2m::new(&g, counts.clone(), config.clone());
    let f_cli = Net::<Cpu>::from_inner(f.valid());
    let (mut cli_labels, mut cli_images, mut cli_stats) = (Vec::new(), Vec::new(), Vec::new());
    for e in 0..epochs {
        let mut translations = schedule.epoch(e, 3);
        for b in loader.epoch_iter(e) {
            cli_labels.push(b.labels.clone());
            let images = match translations.as_mut() {
                Some(t) => t.translate(&m2m, &f_cli, b.images, &b.labels).0,
                None => b.images,
            };
            cli_images.push(images.into_data().to_vec::<f32>().unwrap());
        }
        cli_stats.extend(translations.map(|t| t.stats));
    }

    // The hook's path: a user's Dataset and Batcher, the wrapped model's TrainStep.
    let items: Vec<Item> = labels
        .iter()
        .enumerate()
        .map(|(i, &label)| Item { pixels: pixels[i * 784..(i + 1) * 784].to_vec(), label })
        .collect();
    let settings = M2mSettings::new(from_epoch, batch).with_seed(seed).with_translation(config);
    let hook = M2mHook::new(
        settings.clone(),
        Spy { net: g.clone() },
        InMemDataset::new(items.clone()),
        ItemBatcher,
        |it: &Item| it.label,
        &device,
    )
    .unwrap();
    let model = hook.model(Spy { net: Net::<Cpu>::from_inner(f.valid()) }).unwrap();
    let loader = hook.dataloader();
    SEEN.lock().unwrap().clear();
    let mut hook_labels = Vec::new();
    for _ in 0..epochs {
        // burn-train calls iter() once per epoch
        for input in loader.iter() {
            hook_labels.push(input.labels.clone());
            let _ = model.step(input);
            let _ = hook.epochs(); // reading the statistics mid-epoch changes nothing
        }
    }
    let hook_images = std::mem::take(&mut *SEEN.lock().unwrap());

    assert_eq!(hook_labels, cli_labels, "the batches' samples differ");
    assert_eq!(hook_images.len(), cli_images.len());
    for (i, (h, c)) in hook_images.iter().zip(&cli_images).enumerate() {
        assert!(h == c, "batch {i}: the images differ");
    }
    let hook_stats: Vec<_> = hook.epochs().into_iter().map(|r| r.stats).collect();
    assert_eq!(hook_stats, cli_stats);
    assert_eq!(hook_stats.len(), epochs - from_epoch);
    assert!(hook_stats.iter().all(|s| s.total_accepted() > 0), "translations accepted: {hook_stats:?}");
    // A run resumed after epoch 2 (burn-train's `.checkpoint(2)`) continues with epoch 2's batches.
    let resumed = M2mHook::new(
        settings.resuming_after(2),
        Spy { net: g.clone() },
        InMemDataset::new(items),
        ItemBatcher,
        |it: &Item| it.label,
        &device,
    )
    .unwrap();
    let per_epoch = loader.num_items().div_ceil(batch);
    let epoch2: Vec<Vec<usize>> = resumed.dataloader().iter().map(|input| input.labels).collect();
    assert_eq!(epoch2, cli_labels[2 * per_epoch..3 * per_epoch].to_vec());
    // Epoch 0 is in natural order (every image once); M2m epochs are class-balanced.
    let mut first: Vec<usize> = cli_labels[..loader.num_items().div_ceil(batch)].concat();
    first.sort();
    assert_eq!(first, {
        let mut l = labels.clone();
        l.sort();
        l
    });
}

/// A small model with a chosen normalisation and dropout layer.
macro_rules! tiny {
    ($name:ident, $norm:ty, $norm_init:expr, $drop:ty, $drop_init:expr) => {
        #[derive(Module, Debug)]
        struct $name<B: Backend> {
            conv: Conv2d<B>,
            norm: $norm,
            dropout: $drop,
            head: Linear<B>,
        }
        impl<B: Backend> $name<B> {
            /// The same weights every time: drawn now (burn initialises lazily) from a seed.
            fn new(device: &B::Device) -> Self {
                m2m_core::seed::with_seed::<B, _>(device, 5, || {
                    let model = Self {
                        conv: Conv2dConfig::new([1, 4], [3, 3]).init(device),
                        norm: $norm_init(device),
                        dropout: $drop_init,
                        head: LinearConfig::new(4, 3).init(device),
                    };
                    m2m_burn_plugin::model::materialize(&model);
                    model
                })
            }
        }
        impl<B: Backend> Classifier<B> for $name<B> {
            fn logits(&self, images: Tensor<B, 4>, _mode: Mode) -> Tensor<B, 2> {
                let x = self.dropout.forward(self.norm.forward(self.conv.forward(images)));
                let [n, c, _, _] = x.dims();
                self.head.forward(x.mean_dim(3).mean_dim(2).reshape([n, c]))
            }
        }
    };
}

tiny!(
    BurnBn,
    burn::nn::BatchNorm<B>,
    |d| burn::nn::BatchNormConfig::new(4).init(d),
    m2m_burn_plugin::nn::Dropout,
    m2m_burn_plugin::nn::DropoutConfig::new(0.0).init()
);
tiny!(
    BurnDrop,
    m2m_burn_plugin::nn::BatchNorm<B>,
    |d| m2m_burn_plugin::nn::BatchNormConfig::new(4).init(d),
    burn::nn::Dropout,
    burn::nn::DropoutConfig::new(0.5).init()
);
tiny!(
    Ours,
    m2m_burn_plugin::nn::BatchNorm<B>,
    |d| m2m_burn_plugin::nn::BatchNormConfig::new(4).init(d),
    m2m_burn_plugin::nn::Dropout,
    m2m_burn_plugin::nn::DropoutConfig::new(0.5).init()
);

#[test]
fn models_that_ignore_evaluation_mode_are_refused_at_start_up() {
    let device = Default::default();
    let images = m2m_tests::random::<Cpu, 4>([6, 1, 8, 8], Distribution::Uniform(0.0, 1.0), 1, &device);
    let e = check_eval_mode(&BurnBn::<Cpu>::new(&device), images.clone(), "f").unwrap_err();
    assert!(matches!(e, EvalModeError::BatchStatistics { model: "f", .. }), "{e}");
    assert!(e.to_string().contains("m2m_burn_plugin::nn::BatchNorm"), "{e}");
    let drop = BurnDrop::<Cpu>::new(&device);
    // Dropout's masks come from burn's generator: seeded.
    let e =
        m2m_core::seed::with_seed::<Cpu, _>(&device, 6, || check_eval_mode(&drop, images.clone(), "g")).unwrap_err();
    assert!(matches!(e, EvalModeError::RandomOutputs { model: "g", .. }), "{e}");
    assert!(e.to_string().contains("m2m_burn_plugin::nn::Dropout"), "{e}");
    check_eval_mode(&Ours::<Cpu>::new(&device), images, "f").unwrap();

    // The check reads a copy: burn's BatchNorm under test kept its running statistics.
    let model = BurnBn::<Cpu>::new(&device);
    let before = model.norm.running_mean.value().into_data();
    let _ = check_eval_mode(&model, m2m_tests::random([4, 1, 8, 8], Distribution::Uniform(0.0, 1.0), 6, &device), "f");
    assert_eq!(model.norm.running_mean.value().into_data(), before);

    // Through the hook: g is checked when the hook is built.
    let items: Vec<Item> = (0..8).map(|i| Item { pixels: bytes(784, i), label: (i % 3) as usize }).collect();
    let r = M2mHook::new(
        M2mSettings::new(1, 4),
        BurnBn::<Cpu>::new(&device),
        InMemDataset::new(items.clone()),
        ItemBatcher,
        |it: &Item| it.label,
        &device,
    );
    assert!(matches!(r, Err(HookError::EvalMode(EvalModeError::BatchStatistics { model: "g", .. }))));
    let r = M2mHook::new(
        M2mSettings::new(1, 4),
        Ours::<Cpu>::new(&device),
        InMemDataset::new(items.clone()),
        ItemBatcher,
        |it: &Item| it.label + 1,
        &device,
    );
    assert!(matches!(r, Err(HookError::Label { index: 2, label: 3, classes: 3 })), "{:?}", r.err());
    let hook = M2mHook::new(
        M2mSettings::new(1, 4),
        Ours::<Cpu>::new(&device),
        InMemDataset::new(items),
        ItemBatcher,
        |it: &Item| it.label,
        &device,
    )
    .unwrap();
    hook.model(BurnBn::<Cpu>::new(&device).into_ours()).unwrap();
}

impl<B: AutodiffBackend> TrainStep for Ours<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: ImageBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let logits = self.logits(batch.images, Mode::Train);
        let loss = logits.clone().mean();
        TrainOutput::new(self, loss.backward(), ClassificationOutput::new(loss, logits, batch.targets))
    }
}

/// f's outputs in its training steps under the hook (two epochs of 48 images, M2m from
/// epoch 1) for `seed`: f drops out (`nn::Dropout`, p 0.5) in every step.
fn hooked_outputs(seed: u64) -> Vec<Vec<f32>> {
    let device = Default::default();
    let items: Vec<Item> = (0..48).map(|i| Item { pixels: bytes(784, i), label: (i % 3) as usize }).collect();
    let settings = M2mSettings::new(1, 8).with_seed(seed);
    let g = Ours::<Cpu>::new(&device);
    let hook = M2mHook::new(settings, g, InMemDataset::new(items), ItemBatcher, |it: &Item| it.label, &device).unwrap();
    let model = hook.model(Ours::<Cpu>::new(&device)).unwrap();
    let mut outputs = Vec::new();
    for _ in 0..2 {
        for input in hook.dataloader().iter() {
            outputs.push(model.step(input).item.output.into_data().to_vec().unwrap());
        }
    }
    outputs
}

#[test]
fn hooked_dropout_is_the_same_in_every_run_whatever_other_threads_draw() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = AtomicBool::new(false);
    let (first, second) = std::thread::scope(|scope| {
        // Another thread drops out (outside any hooked step) all along.
        scope.spawn(|| {
            let dropout = m2m_burn_plugin::nn::DropoutConfig::new(0.5).init();
            let ones = Tensor::<Cpu, 2>::ones([32, 32], &Default::default());
            while !stop.load(Ordering::SeqCst) {
                let _ = dropout.forward(ones.clone()).into_data();
            }
        });
        let runs = [scope.spawn(|| hooked_outputs(4)), scope.spawn(|| hooked_outputs(4))];
        let joined = runs.map(|r| r.join());
        // Stopped before a failed run's panic goes on, or the scope would wait for ever.
        stop.store(true, Ordering::SeqCst);
        let [a, b] = joined.map(|r| r.unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        (a, b)
    });
    assert!(first == second, "two runs with seed 4 dropped out differently");
    // Epoch 0 has the same batches for every seed (natural order): other masks, other outputs.
    let per_epoch = first.len() / 2;
    assert!(hooked_outputs(5)[..per_epoch] != first[..per_epoch], "seed 5 dropped out as seed 4 did");
}

impl<B: Backend> BurnBn<B> {
    /// The same weights in the drop-in layers, through a record saved by burn's layers.
    fn into_ours(self) -> Ours<B> {
        let dir = tempfile::tempdir().unwrap();
        let device = self.devices()[0].clone();
        let rec = NamedMpkFileRecorder::<FullPrecisionSettings>::new();
        self.save_file(dir.path().join("m"), &rec).unwrap();
        Ours::new(&device).load_file(dir.path().join("m"), &rec, &device).unwrap()
    }
}

#[test]
fn the_drop_in_layers_compute_what_burns_compute_and_load_its_records() {
    let device = Default::default();
    // Training forward on autodiff: outputs, input gradients and running statistics equal.
    let burn_bn = burn::nn::BatchNormConfig::new(4).with_momentum(0.2).init::<Cpu>(&device);
    let ours = m2m_burn_plugin::nn::BatchNormConfig::new(4).with_momentum(0.2).init::<Cpu>(&device);
    for step in 0..3 {
        let data =
            m2m_tests::random::<Cpu, 4>([5, 4, 3, 3], Distribution::Normal(1.0, 2.0), 10 + step, &device).into_data();
        let (xa, xb) = (
            Tensor::<Cpu, 4>::from_data(data.clone(), &device).require_grad(),
            Tensor::<Cpu, 4>::from_data(data, &device).require_grad(),
        );
        let (a, b) = (burn_bn.forward(xa.clone()), ours.forward(xb.clone()));
        assert_eq!(
            a.clone().into_data().to_vec::<f32>().unwrap(),
            b.clone().into_data().to_vec::<f32>().unwrap(),
            "step {step}"
        );
        let (ga, gb) = (a.powf_scalar(2.0).sum().backward(), b.powf_scalar(2.0).sum().backward());
        assert_eq!(xa.grad(&ga).unwrap().into_data(), xb.grad(&gb).unwrap().into_data());
    }
    assert_eq!(burn_bn.running_mean.value().into_data(), ours.running_mean.value().into_data());
    assert_eq!(burn_bn.running_var.value().into_data(), ours.running_var.value().into_data());
    // Inference backend: both use running statistics.
    let x = m2m_tests::random::<Inner, 3>([2, 4, 5], Distribution::Normal(0.0, 1.0), 3, &device);
    let (bi, oi) = (burn_bn.valid(), ours.valid());
    assert_eq!(bi.forward(x.clone()).into_data(), oi.forward(x).into_data());
    // In M2m's evaluation scope on autodiff: running statistics, no update (burn's: batch).
    let x = m2m_tests::random::<Cpu, 4>([5, 4, 3, 3], Distribution::Normal(1.0, 2.0), 4, &device);
    let before = ours.running_mean.value().into_data();
    let scoped = eval_scope(|| ours.forward(x.clone()));
    assert_eq!(ours.running_mean.value().into_data(), before);
    assert_eq!(scoped.inner().into_data(), ours.valid().forward(x.inner()).into_data());
    // Dropout: drops under autodiff, not in the scope, not on the inner backend.
    let d = m2m_burn_plugin::nn::DropoutConfig::new(0.5).init();
    let ones = Tensor::<Cpu, 2>::ones([64, 64], &device);
    let dropped = d.forward(ones.clone());
    assert!(dropped.into_data() != ones.clone().into_data());
    assert_eq!(eval_scope(|| d.forward(ones.clone())).into_data(), ones.clone().into_data());
    assert_eq!(d.forward(ones.clone().inner()).into_data(), ones.inner().into_data());
    // Records interchange both ways (model saved with burn's layers -> ours -> burn's).
    let theirs = BurnBn::<Cpu>::new(&device);
    let x = m2m_tests::random::<Inner, 4>([3, 1, 8, 8], Distribution::Uniform(0.0, 1.0), 5, &device);
    let want = theirs.valid().logits(x.clone(), Mode::Eval).into_data();
    let ours = theirs.into_ours();
    assert_eq!(ours.valid().logits(x, Mode::Eval).into_data(), want);
}

#[test]
fn a_failing_batcher_stops_the_epoch_loudly_instead_of_shortening_it() {
    let device = Default::default();
    /// Fails on its third batch (the first is the hook's start-up probe).
    struct Failing(std::sync::atomic::AtomicUsize);
    impl<B: Backend> Batcher<B, Item, ImageBatch<B>> for Failing {
        fn batch(&self, items: Vec<Item>, device: &B::Device) -> ImageBatch<B> {
            if self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                panic!("the user's batcher failed");
            }
            ItemBatcher.batch(items, device)
        }
    }
    let items: Vec<Item> = (0..32).map(|i| Item { pixels: bytes(784, i), label: (i % 3) as usize }).collect();
    let g: Net<Cpu> = spec().init_seeded(3, &device);
    let hook = M2mHook::new(
        M2mSettings::new(1, 4),
        g,
        InMemDataset::new(items),
        Failing(Default::default()),
        |it: &Item| it.label,
        &device,
    )
    .unwrap();
    let loader = hook.dataloader();
    let seen = Mutex::new(0usize);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for _ in loader.iter() {
            *seen.lock().unwrap() += 1;
        }
    }));
    assert!(r.is_err(), "the epoch ended without the batcher's panic");
    assert_eq!(*seen.lock().unwrap(), 1, "one batch before the failing one");
}

/// burn's guide batcher: pixels / 255, then MNIST's mean and std (what M2m cannot use).
#[derive(Clone)]
struct NormalisingBatcher;

impl<B: Backend> Batcher<B, Item, ImageBatch<B>> for NormalisingBatcher {
    fn batch(&self, items: Vec<Item>, device: &B::Device) -> ImageBatch<B> {
        let batch = ItemBatcher.batch(items, device);
        ImageBatch { images: (batch.images - 0.1307) / 0.3081, ..batch }
    }
}

fn start<T: Batcher<Cpu, Item, ImageBatch<Cpu>> + 'static>(
    batcher: T,
    items: &[Item],
    settings: M2mSettings,
) -> Result<(), HookError> {
    let device = Default::default();
    let g: Net<Cpu> = spec().init_seeded(4, &device);
    let labels = |it: &Item| it.label;
    M2mHook::new(settings, g, InMemDataset::new(items.to_vec()), batcher, labels, &device).map(|_| ())
}

#[test]
fn normalised_batches_are_refused_at_start_up_unless_the_hook_knows_the_normalisation() {
    // Pixels of 0 and 255 among the first items: normalised, they span [-0.42, 2.82].
    let items: Vec<Item> =
        (0..8).map(|i| Item { pixels: vec![if i % 2 == 0 { 0 } else { 255 }; 784], label: i % 3 }).collect();
    let e = start(NormalisingBatcher, &items, M2mSettings::new(1, 4)).expect_err("a normalising batcher is refused");
    assert!(matches!(e, HookError::PixelRange(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("-0.4242") && text.contains("2.8215"), "the range found: {text}");
    assert!(text.contains("M2mSettings::normalized(mean, std)") && text.contains("docs/m2m.md"), "the fix: {text}");
    // The same data scaled to [0, 1] only (the edge values 0 and 1 included) starts.
    start(ItemBatcher, &items, M2mSettings::new(1, 4)).unwrap();
    // Told how the batcher normalises, the hook starts; told wrongly, it still refuses.
    start(NormalisingBatcher, &items, M2mSettings::new(1, 4).normalized([0.1307], [0.3081])).unwrap();
    let wrong = M2mSettings::new(1, 4).normalized([0.1307], [1.0]);
    assert!(matches!(start(NormalisingBatcher, &items, wrong), Err(HookError::PixelRange(_))));
    for (mean, std, field) in [(vec![0.1], vec![0.0], "standard deviation 0"), (vec![0.1, 0.2], vec![0.3], "2 means")] {
        let e = start(ItemBatcher, &items, M2mSettings::new(1, 4).normalized(mean, std)).unwrap_err();
        assert!(matches!(e, HookError::Normalization(_)) && e.to_string().contains(field), "{e}");
    }
}

/// What [`Spy`] is, for normalised images: it un-normalises them before the network and
/// records the pixels its train step receives.
#[derive(Module, Debug)]
struct NormalisedSpy<B: Backend> {
    net: Net<B>,
}

static SEEN_NORMALISED: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

impl<B: Backend> Classifier<B> for NormalisedSpy<B> {
    fn logits(&self, images: Tensor<B, 4>, mode: Mode) -> Tensor<B, 2> {
        self.net.logits(images * 0.3081 + 0.1307, mode)
    }
}

impl<B: AutodiffBackend> TrainStep for NormalisedSpy<B> {
    type Input = ImageBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: ImageBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let pixels = batch.images.clone() * 0.3081 + 0.1307;
        SEEN_NORMALISED.lock().unwrap().push(pixels.into_data().to_vec().unwrap());
        let logits = self.logits(batch.images, Mode::Eval);
        let loss = logits.clone().mean();
        TrainOutput::new(self, loss.backward(), ClassificationOutput::new(loss, logits, batch.targets))
    }
}

/// One hooked run of `epochs` epochs: the labels of its batches and M2m's statistics.
fn hooked_run<M, T>(model: impl Fn(Net<Cpu>) -> M, batcher: T, settings: M2mSettings, epochs: usize) -> Vec<Vec<usize>>
where
    M: Classifier<Cpu> + AutodiffModule<Cpu> + TrainStep<Input = ImageBatch<Cpu>>,
    T: Batcher<Cpu, Item, ImageBatch<Cpu>> + 'static,
{
    let device = Default::default();
    let labels: Vec<usize> = (0..40).map(|_| 0).chain((0..12).map(|_| 1)).chain((0..4).map(|_| 2)).collect();
    let pixels = bytes(labels.len() * 784, 5);
    let items: Vec<Item> = labels
        .iter()
        .enumerate()
        .map(|(i, &label)| Item { pixels: pixels[i * 784..(i + 1) * 784].to_vec(), label })
        .collect();
    let (g, f): (Net<Cpu>, Net<Cpu>) = (spec().init_seeded(1, &device), spec().init_seeded(2, &device));
    let hook =
        M2mHook::new(settings, model(g), InMemDataset::new(items), batcher, |it: &Item| it.label, &device).unwrap();
    let model = hook.model(model(f)).unwrap();
    let mut seen_labels = Vec::new();
    for _ in 0..epochs {
        for input in hook.dataloader().iter() {
            seen_labels.push(input.labels.clone());
            let _ = model.step(input);
        }
    }
    assert!(hook.epochs().iter().all(|e| e.stats.total_accepted() > 0), "translations accepted");
    seen_labels
}

#[test]
fn a_normalising_batcher_gets_the_translations_of_pixels() {
    let config = TranslationParams { gamma: 1e-6, beta: 0.5, steps: 2, ..Default::default() }.check().unwrap();
    let settings = M2mSettings::new(1, 16).with_seed(3).with_translation(config);
    let _seen = SEEN_BY_ONE_TEST.lock().unwrap_or_else(|p| p.into_inner());
    SEEN.lock().unwrap().clear();
    let pixel_labels = hooked_run(|net| Spy { net }, ItemBatcher, settings.clone(), 3);
    let normalised = settings.normalized([0.1307], [0.3081]);
    let normalised_labels = hooked_run(|net| NormalisedSpy { net }, NormalisingBatcher, normalised, 3);
    assert_eq!(pixel_labels, normalised_labels, "the same batches");
    let (pixels, from_normalised) = (SEEN.lock().unwrap().clone(), SEEN_NORMALISED.lock().unwrap().clone());
    assert_eq!(from_normalised.len(), pixel_labels.len());
    for (i, (a, b)) in pixels.iter().zip(&from_normalised).enumerate() {
        let worst = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "batch {i}: the pixels differ by {worst}");
    }
}
