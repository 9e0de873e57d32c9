//! Throughput of one training iteration (forward, backward, SGD step) and of evaluation
//! for a model, batch size and input shape, on the CPU backend. Prints one line per
//! measurement; numbers go to docs/benchmarks.md with the machine and command.
//!
//! ```text
//! m2m-bench [resnet32|small-cnn] [batch] [channels] [size] [iterations]
//! ```
//! (`m2m-bench --help` lists the defaults)
//!
//! Measures a plain training step, an M2m iteration (translation of a class-balanced
//! FMNIST-LT rho 100 batch with the paper's settings, then the training step) and an
//! evaluation forward; medians over `iterations` after one warm-up. Every timing
//! ends with a read of the loss to the host, so GPU work is included.
//! `M2M_BENCH_BACKEND=cuda` (or `cuda:N`, `wgpu`, `wgpu:cpu`, ... as `m2m --backend` takes
//! them) runs it on a GPU backend (build with `--features cuda` or `--features wgpu`).
//!
//! ```text
//! m2m-bench compare [resnet32|small-cnn] [batch] [channels] [size]
//! ```
//!
//! runs the same weights and inputs through the CPU backend and the GPU backend of
//! `M2M_BENCH_BACKEND` (default `cuda`; `wgpu` with `--features wgpu`) and prints the relative error of logits, loss, input gradient, eval-mode
//! logits and logits after one SGD step; exits with status 1 above 1e-3.
//!
//! ```text
//! m2m-bench batchnorm [batch] [size] [iterations]
//! ```
//!
//! Times ResNet-32's 31 BatchNorm layers in training mode (forward with batch statistics
//! and running-statistics update, then backward of `sum(y * g)` to the input, gamma and
//! beta) on the CPU backend, per layer shape.
//!
//! ```text
//! m2m-bench conv [batch] [size] [iterations]
//! ```
//!
//! Times the three convolution kernels of a ResNet-32 training step per layer shape
//! (forward, input gradient, weight gradient), Flex's as burn's autodiff calls them
//! against ours (`kernels::conv::slices`), and checks that they agree (exit status 1
//! above 1e-4 relative).

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{Distribution, Int, Tensor};
use m2m_burn_plugin::backend::{run_on, BackendChoice, BackendTask, Cpu};
use m2m_burn_plugin::model::{Architecture, Classifier, Mode, ModelSpec, Net};
use m2m_core::seed::with_seed;

/// Throughput and backend-parity benchmarks of m2m's models (docs/benchmarks.md).
#[derive(clap::Parser)]
#[command(name = "m2m-bench", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command: time a training step, an M2m iteration and an evaluation forward
    /// on `M2M_BENCH_BACKEND` (default cpu; cuda, cuda:N, wgpu, ... as `m2m --backend`).
    #[command(flatten)]
    time: TimeArgs,
}

/// The arguments of the timing run (no command).
#[derive(clap::Args)]
struct TimeArgs {
    #[command(flatten)]
    workload: Workload,
    /// Timed repetitions (medians, after one warm-up).
    #[arg(default_value_t = 5)]
    iterations: usize,
}

/// The model and its input.
#[derive(clap::Args, Clone, Copy)]
struct Workload {
    #[arg(value_enum, default_value_t = Model::Resnet32)]
    model: Model,
    #[arg(default_value_t = 128)]
    batch: usize,
    #[arg(default_value_t = 1)]
    channels: usize,
    /// Height and width of the square input.
    #[arg(default_value_t = 28)]
    size: usize,
}

#[derive(clap::ValueEnum, Clone, Copy)]
enum Model {
    Resnet32,
    SmallCnn,
}

#[derive(clap::Subcommand)]
enum Command {
    /// The same weights and inputs through the CPU and the GPU backend of `M2M_BENCH_BACKEND`
    /// (default cuda): relative errors, exit status 1 above 1e-3.
    Compare(Workload),
    /// ResNet-32's 31 BatchNorm layers in training mode on the CPU, per layer shape.
    Batchnorm(Layers),
    /// ResNet-32's convolution kernels on the CPU, Flex's against ours, per layer shape;
    /// exit status 1 when they disagree above 1e-4.
    Conv(Layers),
}

/// The input of the per-layer benchmarks.
#[derive(clap::Args)]
struct Layers {
    #[arg(default_value_t = 128)]
    batch: usize,
    #[arg(default_value_t = 28)]
    size: usize,
    #[arg(default_value_t = 5)]
    iterations: usize,
}

fn main() {
    // The `m2m` binary's allocator settings, so that timings here are what runs get
    // (`M2M_MALLOC=glibc` measures without them).
    m2m_burn_plugin::stop::restore_sigpipe(); // `m2m-bench ... | head` ends quietly
    m2m_burn_plugin::malloc::keep_freed_buffers();
    let cli = <Cli as clap::Parser>::parse();
    let (workload, iterations) = match cli.command {
        Some(Command::Batchnorm(l)) => return batchnorm(l.batch, l.size, l.iterations),
        Some(Command::Conv(l)) => return conv_kernels(l.batch, l.size, l.iterations),
        Some(Command::Compare(w)) => (w, None),
        None => (cli.time.workload, Some(cli.time.iterations)),
    };
    let arch = match workload.model {
        Model::Resnet32 => Architecture::ResNet32,
        Model::SmallCnn => Architecture::SmallCnn,
    };
    let Workload { batch, channels, size, .. } = workload;
    // `compare` defaults to cuda, timings to cpu.
    let default = if iterations.is_none() { "cuda" } else { "cpu" };
    let choice: BackendChoice = match std::env::var("M2M_BENCH_BACKEND").as_deref().unwrap_or(default).parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: M2M_BENCH_BACKEND: {e}");
            std::process::exit(2);
        }
    };
    let outcome = match iterations {
        None if choice == BackendChoice::Cpu => {
            eprintln!("error: `compare` compares a GPU backend with the CPU: set M2M_BENCH_BACKEND to cuda or wgpu");
            std::process::exit(2);
        }
        None => run_on(choice, Compare { arch, batch, channels, size, name: format!("{choice:?}") }),
        Some(iterations) => {
            run_on(choice, Bench { arch, batch, channels, size, iterations, name: backend_name(choice) })
        }
    };
    if let Err(e) = outcome {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The backend's name in the output lines (`cpu`, `cuda`, `wgpu`), as scripts grep them.
fn backend_name(choice: BackendChoice) -> String {
    match choice {
        BackendChoice::Cpu => "cpu".into(),
        BackendChoice::Cuda { .. } => "cuda".into(),
        BackendChoice::Wgpu { .. } => "wgpu".into(),
    }
}

/// The timing run on a backend.
struct Bench {
    arch: Architecture,
    batch: usize,
    channels: usize,
    size: usize,
    iterations: usize,
    name: String,
}

impl BackendTask for Bench {
    type Output = ();
    fn run<B: burn::tensor::backend::AutodiffBackend>(self, device: B::Device) -> anyhow::Result<()> {
        run::<B>(device, &self.name, self.arch, self.batch, self.channels, self.size, self.iterations);
        Ok(())
    }
}

fn bench_spec(arch: Architecture, channels: usize) -> ModelSpec {
    ModelSpec {
        architecture: arch,
        cosine_head: false,
        in_channels: channels,
        num_classes: 10,
        mean: vec![0.5; channels],
        std: vec![0.25; channels],
    }
}

/// The parity check of a GPU backend against the CPU: the same weights and inputs
/// through both, relative errors printed; exits with status 1 above 1e-3.
struct Compare {
    arch: Architecture,
    batch: usize,
    channels: usize,
    size: usize,
    name: String,
}

impl BackendTask for Compare {
    type Output = ();
    fn run<G: burn::tensor::backend::AutodiffBackend>(self, gpu: G::Device) -> anyhow::Result<()> {
        use m2m_burn_plugin::parity::{compare, parity_outputs, weights_to_bytes};
        let Compare { arch, batch, channels, size, name } = self;
        let spec = bench_spec(arch, channels);
        let cpu = Default::default();
        let bytes = weights_to_bytes(&spec.init_seeded::<Cpu>(0, &cpu));
        let mut rng = <m2m_core::seed::ChaCha12Rng as rand::SeedableRng>::seed_from_u64(0);
        let pixels: Vec<f32> =
            (0..batch * channels * size * size).map(|_| rand::RngExt::random::<f32>(&mut rng)).collect();
        let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
        let shape = [batch, channels, size, size];
        let reference = parity_outputs::<Cpu>(&spec, &bytes, &pixels, shape, &labels, &cpu)?;
        let on_gpu = parity_outputs::<G>(&spec, &bytes, &pixels, shape, &labels, &gpu)?;
        let mut worst = 0.0f64;
        println!(
            "{name} vs CPU, {arch:?} batch {batch} input {channels}x{size}x{size}, same weights and inputs (relative L2 error):"
        );
        for (what, err) in compare(&on_gpu, &reference) {
            println!("  {what:28} {err:.3e}");
            worst = worst.max(err);
        }
        println!("loss: cpu {:.6}, {name} {:.6}", reference.loss, on_gpu.loss);
        if worst > 1e-3 {
            println!("FAIL: largest relative error {worst:.3e} > 1e-3");
            std::process::exit(1);
        }
        println!("PASS: largest relative error {worst:.3e} <= 1e-3");
        Ok(())
    }
}

/// Seconds of the first call (warm-up: kernel compilation and autotuning on a GPU) and the
/// median of the others.
struct Timing {
    warm_up: f64,
    median: f64,
}

/// Runs `step` `iterations + 1` times on a state it takes and gives back (the model, which
/// an optimiser step consumes), timing each call.
fn timed<S>(iterations: usize, mut state: S, mut step: impl FnMut(S) -> S) -> (S, Timing) {
    let mut times = Vec::with_capacity(iterations + 1);
    for _ in 0..=iterations {
        let t = Instant::now();
        state = step(state);
        times.push(t.elapsed().as_secs_f64());
    }
    (state, Timing { warm_up: times[0], median: median(&times[1..]) })
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One SGD step of `model` on `(x, y)`, ending with a read of the loss to the host; also
/// the host time of the update alone (its kernels may still run on a GPU).
fn train_step<B: burn::tensor::backend::AutodiffBackend, O: Optimizer<Net<B>, B>>(
    model: Net<B>,
    optim: &mut O,
    x: Tensor<B, 4>,
    y: Tensor<B, 1, Int>,
) -> (Net<B>, f64) {
    let loss = CrossEntropyLossConfig::new().init(&x.device()).forward(model.logits(x, Mode::Train), y);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let t_optim = Instant::now();
    let model = optim.step(0.01, model, grads);
    let optim_time = t_optim.elapsed().as_secs_f64();
    let _ = loss.into_scalar();
    (model, optim_time)
}

fn run<B: burn::tensor::backend::AutodiffBackend>(
    device: B::Device,
    backend: &str,
    arch: Architecture,
    batch: usize,
    channels: usize,
    size: usize,
    iterations: usize,
) {
    let model: Net<B> = bench_spec(arch, channels).init_seeded(0, &device);
    let mut optim = SgdConfig::new()
        .with_momentum(Some(MomentumConfig::new().with_momentum(0.9).with_dampening(0.0)))
        .init::<B, Net<B>>();
    let x = with_seed::<B, _>(&device, 0, || {
        Tensor::<B, 4>::random([batch, channels, size, size], Distribution::Uniform(0.0, 1.0), &device)
    });
    // Labels 0..9 in turn: for the M2m iteration, a class-balanced batch of FMNIST-LT
    // rho-100 classes, whose planned slots are translated through f and g (T steps).
    let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
    let y = Tensor::<B, 1, Int>::from_ints(labels.iter().map(|&l| l as i32).collect::<Vec<_>>().as_slice(), &device);
    let mut optim_times = Vec::new();
    let (model, train) = timed(iterations, model, |model| {
        let (model, optim_time) = train_step(model, &mut optim, x.clone(), y.clone());
        optim_times.push(optim_time);
        model
    });
    let counts = m2m_core::imbalance::class_counts(6000, 10, 100.0, m2m_core::imbalance::ImbalanceProfile::Exponential);
    let m2m = m2m_burn_plugin::m2m::M2m::new(&model, counts, m2m_core::translation::TranslationConfig::default());
    let mut rng = <m2m_core::seed::ChaCha12Rng as rand::SeedableRng>::seed_from_u64(0);
    let mut translated = Vec::new();
    let (model, m2m_time) = timed(iterations, model, |model| {
        let (images, generation) = m2m.translate_batch(&model, x.clone(), &labels, &mut rng);
        translated.push(generation.planned.len());
        train_step(model, &mut optim, images, y.clone()).0
    });
    let (inner, xi) = (model.valid(), x.inner());
    let ((), eval) = timed(iterations, (), |()| {
        let _ = inner.logits(xi.clone(), Mode::Eval).sum().into_scalar();
    });
    let (tr, ev, mm, op) = (train.median, eval.median, m2m_time.median, median(&optim_times[1..]));
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!(
        "{backend} {arch:?} batch {batch} input {channels}x{size}x{size} threads {threads}: train step {tr:.3} s ({:.1} img/s), eval forward {ev:.3} s ({:.1} img/s)",
        batch as f64 / tr,
        batch as f64 / ev
    );
    println!(
        "{backend} {arch:?} batch {batch}: M2m iteration {mm:.3} s ({:.1} translated images per batch, {} steps) = {:.1}x the training step",
        translated[1..].iter().sum::<usize>() as f64 / iterations as f64,
        m2m.config().steps(),
        mm / tr
    );
    println!("{backend} {arch:?} batch {batch}: of the training step, SGD update {op:.4} s (host time)");
    println!(
        "{backend} {arch:?} batch {batch}: first calls (warm-up, not in the medians): training step {:.3} s, M2m iteration {:.3} s, eval forward {:.3} s",
        train.warm_up, m2m_time.warm_up, eval.warm_up
    );
}

/// Median seconds of `iterations` calls of `f` after one warm-up call (`f` returns a
/// value read back from the result, so the work is done when it returns).
fn median_seconds(iterations: usize, mut f: impl FnMut() -> f32) -> f64 {
    timed(iterations, (), |()| {
        std::hint::black_box(f());
    })
    .1
    .median
}

/// One stride-1 3x3 convolution shape of ResNet-32 and how often a training step runs it.
struct ConvLayer {
    name: &'static str,
    channels: usize,
    size: usize,
    per_step: usize,
}

fn conv_kernels(batch: usize, size: usize, iterations: usize) {
    // Stride-1 3x3 convolutions with padding 1 (the stride-2 first convolution of stages
    // 2 and 3 and the stem are left out: they are 3 of 31).
    let layers = [
        ConvLayer { name: "stage 1", channels: 16, size, per_step: 10 },
        ConvLayer { name: "stage 2", channels: 32, size: size.div_ceil(2), per_step: 9 },
        ConvLayer { name: "stage 3", channels: 64, size: size.div_ceil(4), per_step: 9 },
    ];
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!("conv kernels, batch {batch}, ResNet-32 stride-1 3x3 layers for {size}x{size} inputs, threads {threads}, medians of {iterations} (ms)");
    println!("burn = Flex's kernels as burn's autodiff calls them (input gradient: conv_transpose2d; weight gradient: burn-backend's generic conv2d_weight_backward); direct = kernels::conv::slices (im2col + gemm)");
    println!("| layer | shape | per step | forward burn | forward direct | input grad burn | input grad direct | weight grad burn | weight grad direct | max rel. diff |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut totals = [0.0f64; 6];
    let mut worst = 0.0f64;
    let mut flops = 0.0f64; // multiply-adds x 2 of one kernel over all layers; the same for all three
    for layer in &layers {
        let (c, s) = (layer.channels, layer.size);
        flops += (layer.per_step * 2 * batch * c * c * 9 * s * s) as f64;
        let (times, layer_worst) = conv_layer(batch, c, s, iterations);
        for (total, t) in totals.iter_mut().zip(times) {
            *total += t * layer.per_step as f64;
        }
        let cells: Vec<String> = times.iter().map(|t| format!("{:.1}", t * 1e3)).collect();
        println!("| {} | {c}x{s}x{s} | {} | {} | {layer_worst:.1e} |", layer.name, layer.per_step, cells.join(" | "));
        worst = worst.max(layer_worst);
    }
    let row = |f: &dyn Fn(f64) -> String| totals.iter().map(|t| f(*t)).collect::<Vec<_>>().join(" | ");
    println!("| all 28 layers, one training step | | | {} | |", row(&|t| format!("{:.0}", t * 1e3)));
    println!("| GFLOP/s (direct-convolution flops) | | | {} | |", row(&|t| format!("{:.1}", flops / t / 1e9)));
    if worst > 1e-4 {
        eprintln!("error: our kernels differ from burn's by {worst:.1e} (relative), above 1e-4");
        std::process::exit(1);
    }
}

/// One layer of `conv_kernels`' table (`c` channels in and out, `s`x`s` maps): median
/// seconds of burn's and our forward, input gradient and weight gradient, in that order,
/// and the largest relative difference between the two.
fn conv_layer(batch: usize, c: usize, s: usize, iterations: usize) -> ([f64; 6], f64) {
    use burn::backend::Flex as F;
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::{ConvOptions, ModuleOps};
    use burn::tensor::TensorPrimitive;
    use m2m_burn_plugin::kernels::conv::slices::{self as kernels, ConvShape};

    let device = Default::default();
    let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let shape = ConvShape { n: batch, c_in: c, h: s, w: s, c_out: c, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
    let (x, w, g) = with_seed::<F, _>(&device, c as u64, || {
        (
            Tensor::<F, 4>::random([batch, c, s, s], Distribution::Normal(0.0, 1.0), &device),
            Tensor::<F, 4>::random([c, c, 3, 3], Distribution::Normal(0.0, 0.1), &device),
            Tensor::<F, 4>::random([batch, c, s, s], Distribution::Normal(0.0, 1.0), &device),
        )
    });
    let prim = |t: &Tensor<F, 4>| t.clone().into_primitive().tensor();
    let back = |t| Tensor::<F, 4>::from_primitive(TensorPrimitive::Float(t));
    let host = |t: &Tensor<F, 4>| t.clone().into_data().into_vec::<f32>().unwrap();
    let (xv, wv, gv) = (host(&x), host(&w), host(&g));
    let first = |t: Tensor<F, 4>| t.slice([0..1, 0..1, 0..1, 0..1]).into_scalar();
    type Pair<'a> = (Box<dyn Fn() -> Tensor<F, 4> + 'a>, Box<dyn Fn() -> Vec<f32> + 'a>);
    let pairs: [Pair; 3] = [
        (
            Box::new(|| conv2d(x.clone(), w.clone(), None, options.clone())),
            Box::new(|| kernels::forward(&shape, &xv, &wv)),
        ),
        (
            Box::new(|| back(<F as ModuleOps<F>>::conv2d_x_backward(prim(&x), prim(&w), prim(&g), options.clone()))),
            Box::new(|| kernels::input_grad(&shape, &gv, &wv)),
        ),
        (
            Box::new(|| {
                back(<F as ModuleOps<F>>::conv2d_weight_backward(prim(&x), prim(&w), prim(&g), options.clone()))
            }),
            Box::new(|| kernels::weight_grad(&shape, &xv, &gv)),
        ),
    ];
    let mut times = [0.0f64; 6];
    let mut worst = 0.0f64;
    for (k, (theirs, ours)) in pairs.iter().enumerate() {
        times[2 * k] = median_seconds(iterations, || first(theirs()));
        times[2 * k + 1] = median_seconds(iterations, || ours()[0]);
        let (a, b) = (host(&theirs()), ours());
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(&b).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        worst = worst.max(diff as f64);
    }
    (times, worst)
}

/// ResNet-32's BatchNorm layers in training mode, forward and backward, per shape.
fn batchnorm(batch: usize, size: usize, iterations: usize) {
    use m2m_burn_plugin::model::BatchNorm2d;
    let device = Default::default();
    // The stem's and stage 1's 11 layers at full size, 10 at half, 10 at a quarter.
    let layers = [
        ("stem + stage 1", 16, size, 11),
        ("stage 2", 32, size.div_ceil(2), 10),
        ("stage 3", 64, size.div_ceil(4), 10),
    ];
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    println!("BatchNorm2d (train mode) forward + backward of sum(y * g), batch {batch}, ResNet-32 layers for {size}x{size} inputs, threads {threads}, medians of {iterations} (ms)");
    println!("| layers | shape | per step | forward | forward + backward |");
    println!("|---|---|---|---|---|");
    let mut totals = [0.0f64; 2];
    for (name, c, s, per_step) in layers {
        let bn = BatchNorm2d::<Cpu>::new(c, &device);
        let (x, g) = with_seed::<Cpu, _>(&device, c as u64, || {
            (
                Tensor::<Cpu, 4>::random([batch, c, s, s], Distribution::Normal(0.5, 2.0), &device),
                Tensor::<Cpu, 4>::random([batch, c, s, s], Distribution::Normal(0.0, 1.0), &device),
            )
        });
        let forward = median_seconds(iterations, || {
            bn.forward(x.clone().require_grad(), Mode::Train).slice([0..1, 0..1, 0..1, 0..1]).into_scalar()
        });
        let both = median_seconds(iterations, || {
            let xg = x.clone().require_grad();
            let grads = (bn.forward(xg.clone(), Mode::Train) * g.clone()).sum().backward();
            xg.grad(&grads).expect("input gradient").slice([0..1, 0..1, 0..1, 0..1]).into_scalar()
        });
        println!("| {name} | {c}x{s}x{s} | {per_step} | {:.1} | {:.1} |", forward * 1e3, both * 1e3);
        totals[0] += forward * per_step as f64;
        totals[1] += both * per_step as f64;
    }
    println!("| all 31 layers, one training step | | | {:.0} | {:.0} |", totals[0] * 1e3, totals[1] * 1e3);
}
