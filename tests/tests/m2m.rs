//! M2m in the plugin: g is a distinct frozen copy, translation leaves f and g untouched
//! and only replaces accepted slots, gamma > 1 reduces M2m to DRS exactly, and the
//! ERM baseline is trained once and reused.

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::{Distribution, Tensor};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::m2m::M2m;
use m2m_burn_plugin::model::{Architecture, Classifier, Mode, ModelSpec, Net};
use m2m_burn_plugin::recipe::load_recipe;
use m2m_burn_plugin::run::{run_recipe, ProgressView};
use m2m_core::seed::ChaCha12Rng;
use m2m_core::translation::{TranslationConfig, TranslationParams};
use m2m_tests::{records, snapshot, write_idx_dataset};
use rand::SeedableRng;

fn spec() -> ModelSpec {
    ModelSpec {
        architecture: Architecture::SmallCnn,
        cosine_head: false,
        in_channels: 1,
        num_classes: 3,
        mean: vec![0.5],
        std: vec![0.25],
    }
}

fn settle(net: &Net<Cpu>) {
    let x = Tensor::<Cpu, 4>::zeros([1, 1, 28, 28], &Default::default());
    let _ = net.logits(x, Mode::Eval);
}

#[test]
fn g_is_a_distinct_frozen_copy_even_when_built_from_f() {
    let device = Default::default();
    let mut f: Net<Cpu> = spec().init_seeded(1, &device);
    let m2m = M2m::new(&f, vec![100, 30, 10], TranslationConfig::default());
    let g_before = snapshot(&m2m.g().valid());
    // Train f: BatchNorm running statistics move and an optimiser step changes weights.
    let mut optim = SgdConfig::new().init::<Cpu, Net<Cpu>>();
    for step in 0..3 {
        let x = m2m_tests::random::<Cpu, 4>([8, 1, 28, 28], Distribution::Uniform(0.0, 1.0), 10 + step, &device);
        let loss = f.logits(x, Mode::Train).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &f);
        f = optim.step(0.1, f, grads);
    }
    settle(&f);
    assert!(snapshot(&m2m.g().valid()) == g_before, "training f changed g");
    assert!(snapshot(&f.valid()) != g_before, "f did train");
}

#[test]
fn translate_batch_replaces_only_accepted_slots_and_touches_no_model() {
    let device = Default::default();
    let f: Net<Cpu> = spec().init_seeded(2, &device);
    let g: Net<Cpu> = spec().init_seeded(3, &device);
    settle(&f);
    let (f_before, g_before) = (snapshot(&f), snapshot(&g));
    // gamma tiny: every attempt passes the confidence test; beta such that p_accept ~ 1.
    let config = TranslationParams { gamma: 1e-6, beta: 0.5, steps: 3, ..Default::default() }.check().unwrap();
    let m2m = M2m::new(&g, vec![1000, 100, 10], config);
    let labels = vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2, 1];
    let images = m2m_tests::random::<Cpu, 4>([12, 1, 28, 28], Distribution::Uniform(0.0, 1.0), 2, &device);
    let (mixed, generation) = m2m.translate_batch(&f, images.clone(), &labels, &mut ChaCha12Rng::seed_from_u64(4));
    assert_eq!(mixed.dims(), [12, 1, 28, 28]);
    assert!(!generation.planned.is_empty());
    assert!(generation.accepted.iter().all(|&a| a), "gamma ~ 0 and p_accept ~ 1 accept all");
    let before: Vec<f32> = images.into_data().to_vec().unwrap();
    let after: Vec<f32> = mixed.into_data().to_vec().unwrap();
    let changed: Vec<usize> =
        (0..12).filter(|&i| before[i * 784..(i + 1) * 784] != after[i * 784..(i + 1) * 784]).collect();
    let mut accepted: Vec<usize> = generation.accepted_slots().map(|p| p.slot).collect();
    accepted.sort();
    assert_eq!(changed, accepted);
    for p in generation.accepted_slots() {
        assert!(p.target != 0 && p.seed_class < p.target, "{p:?}");
    }
    assert!(snapshot(&f) == f_before && snapshot(&g) == g_before, "translation changed f or g");

    // gamma > 1: nothing is accepted and the batch is the over-sampled one (DRS).
    let strict = M2m::new(&g, vec![1000, 100, 10], TranslationParams::default().with_gamma(1.01).check().unwrap());
    let images = m2m_tests::random::<Cpu, 4>([12, 1, 28, 28], Distribution::Uniform(0.0, 1.0), 3, &device);
    let (same, generation) = strict.translate_batch(&f, images.clone(), &labels, &mut ChaCha12Rng::seed_from_u64(5));
    assert!(!generation.planned.is_empty() && generation.accepted.iter().all(|&a| !a));
    assert_eq!(same.into_data().to_vec::<f32>().unwrap(), images.into_data().to_vec::<f32>().unwrap());
}

fn recipe_text(data: &std::path::Path, out: &std::path::Path, name: &str, seed: u64, tail: &str) -> String {
    format!(
        r#"(
    name: "{name}",
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 8.0, selection: FirstInOrder,
              data_seed: 0, eval_split: ValFromTest(val_fraction: 0.2),
              augmentation: (crop_padding: 0, horizontal_flip: false)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
    schedule: (epochs: 3, warmup_epochs: 0, milestones: []),
    batch_size: 32,
    eval_batch_size: 64,
    seed: {seed},
    output_dir: "{}",
    {tail}
)"#,
        data.display(),
        out.display()
    )
}

#[test]
fn m2m_runs_reuse_g_and_reduce_to_drs_when_nothing_is_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    let out = tmp.path().join("runs");
    let write = |name: &str, seed: u64, tail: &str| {
        let p = tmp.path().join(format!("{name}.ron"));
        std::fs::write(&p, recipe_text(&data, &out, name, seed, tail)).unwrap();
        p
    };
    let m2m_tail = "m2m: (g: TrainErm(seed: 99), gamma: 0.5, steps: 2, from_epoch: 1),";

    // M2m with g trained first; a lock left by a process that died while training g
    // (here: one that has exited) is taken over instead of waited for.
    let r = load_recipe(&write("m2m-a", 1, m2m_tail), &[]).unwrap();
    let g = m2m_burn_plugin::run::baseline_recipe(&r, 99);
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    dead.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::create_dir_all(&g.output_dir).unwrap();
    let lock = g.output_dir.join(format!("{}.lock", g.name));
    std::fs::write(&lock, format!("{} {}", host.trim(), dead.id())).unwrap();
    run_recipe::<Cpu>(&r, Default::default(), ProgressView::Log).unwrap();
    let recs = records(&out.join("m2m-a"));
    assert!(recs[0].m2m.is_none(), "epoch 0 is before m2m.from_epoch");
    let stats = recs[1].m2m.as_ref().expect("M2m statistics in M2m epochs");
    assert!(stats.total_attempts() > 0);
    assert_eq!(stats.attempts[0], 0, "the largest class is never a target");
    assert_eq!(format!("{:?}", recs[1].sampler), "ClassBalanced");
    let g_runs: Vec<_> = std::fs::read_dir(out.join("_g")).unwrap().collect();
    assert_eq!(g_runs.len(), 1, "one g run and no lock left");
    assert!(!lock.exists());

    // Another f seed reuses the same g.
    let r = load_recipe(&write("m2m-b", 2, m2m_tail), &[]).unwrap();
    run_recipe::<Cpu>(&r, Default::default(), ProgressView::Log).unwrap();
    assert_eq!(std::fs::read_dir(out.join("_g")).unwrap().count(), 1, "g was trained again");

    // gamma > 1 (an ablation): exactly DRS.
    let strict = load_recipe(
        &write("m2m-strict", 3, "m2m: (g: TrainErm(seed: 99), gamma: 1.01, steps: 2, from_epoch: 1),"),
        &[],
    )
    .unwrap();
    run_recipe::<Cpu>(&strict, Default::default(), ProgressView::Log).unwrap();
    let drs = load_recipe(&write("drs", 3, "sampler: (kind: ClassBalanced, from_epoch: 1),"), &[]).unwrap();
    run_recipe::<Cpu>(&drs, Default::default(), ProgressView::Log).unwrap();
    let (a, b) = (records(&out.join("m2m-strict")), records(&out.join("drs")));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((x.train_loss, &x.val, &x.test), (y.train_loss, &y.val, &y.test), "epoch {}", x.epoch);
    }
    assert_eq!(a[2].m2m.as_ref().unwrap().total_accepted(), 0);
}

#[test]
fn m2m_recipe_fields_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("r.ron");
    let cases = [
        ("m2m: (g: TrainErm(seed: 1), beta: 1.0, from_epoch: 1),", "m2m.beta"),
        ("m2m: (g: TrainErm(seed: 1), gamma: 0.0, from_epoch: 1),", "m2m.gamma"),
        ("m2m: (g: TrainErm(seed: 1), lambda: -1.0, from_epoch: 1),", "m2m.lambda"),
        ("m2m: (g: TrainErm(seed: 1), steps: 0, from_epoch: 1),", "m2m.steps"),
        ("m2m: (g: TrainErm(seed: 1), from_epoch: 9),", "m2m.from_epoch"),
        ("m2m: (beta: 0.9, from_epoch: 1),", "m2m.g"),
        ("m2m: (g: TrainErm(seed: 1), from_epoch: 1), sampler: (kind: ClassBalanced, from_epoch: 2),", "sampler"),
    ];
    for (tail, field) in cases {
        std::fs::write(&p, recipe_text(tmp.path(), tmp.path(), "x", 0, tail)).unwrap();
        let e = load_recipe(&p, &[]).unwrap_err().to_string();
        assert!(e.contains(&format!("{field}:")), "{tail}: {e}");
    }
    // Defaults are the paper's.
    std::fs::write(&p, recipe_text(tmp.path(), tmp.path(), "x", 0, "m2m: (g: TrainErm(seed: 1), from_epoch: 1),"))
        .unwrap();
    let r = load_recipe(&p, &[]).unwrap();
    let t = &r.m2m.unwrap().translation;
    assert_eq!((t.beta(), t.lambda(), t.gamma(), t.step_size(), t.steps()), (0.999, 0.5, 0.9, 0.1, 10));
}

#[test]
fn probe_reports_attempts_on_training_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    let p = tmp.path().join("probe.ron");
    std::fs::write(
        &p,
        recipe_text(&data, tmp.path(), "probe", 0, "m2m: (g: TrainErm(seed: 1), gamma: 1.0, from_epoch: 1),"),
    )
    .unwrap();
    let recipe = load_recipe(&p, &[]).unwrap();
    let g_path = tmp.path().join("g");
    let spec = recipe.model_spec(&recipe.dataset.known_format().unwrap());
    m2m_burn_plugin::model::save_classifier(&spec.init_seeded::<Cpu>(4, &Default::default()), &spec, &g_path).unwrap();
    let stats =
        m2m_burn_plugin::run::diagnose::probe_translation::<Cpu>(&recipe, &g_path, None, 2, &Default::default())
            .unwrap();
    assert_eq!(stats.slots, 64); // two batches of 32
    assert!(stats.total_attempts() > 0 && stats.attempts[0] == 0);
    assert!(stats.mean_g_confidence().unwrap() <= 1.0);
    // A g saved for another class count is refused with a clear error.
    let other = ModelSpec { num_classes: 3, ..spec.clone() };
    m2m_burn_plugin::model::save_classifier(&other.init_seeded::<Cpu>(5, &Default::default()), &other, &g_path)
        .unwrap();
    let e = m2m_burn_plugin::run::diagnose::probe_translation::<Cpu>(&recipe, &g_path, None, 1, &Default::default())
        .unwrap_err();
    assert!(format!("{e:#}").contains("3 classes"), "{e:#}");
}

#[test]
fn f_probabilities_on_accepted_slots_are_summed_on_the_device_and_read_once() {
    use m2m_burn_plugin::m2m::{BatchGeneration, FProbabilities};
    use m2m_core::translation::{GenerationStats, PlannedSlot};
    type B = Cpu;
    let device = Default::default();
    let slot = |slot, target, seed_class| PlannedSlot { slot, target, seed: 0, seed_class, p_accept: 1.0 };
    // Three classes, four slots; slots 1 and 3 accepted, slot 2 planned but rejected.
    let rows = [[0.0f32, 1.0, 2.0], [2.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 3.0, -1.0]];
    let logits = Tensor::<B, 2>::from_floats(rows, &device);
    let generation = BatchGeneration {
        planned: vec![slot(1, 2, 0), slot(2, 1, 0), slot(3, 0, 1)],
        confidence: vec![0.95, 0.5, 0.97],
        accepted: vec![true, false, true],
    };
    let softmax = |r: [f32; 3], k: usize| {
        let e: Vec<f64> = r.iter().map(|&v| (v as f64).exp()).collect();
        e[k] / e.iter().sum::<f64>()
    };
    let mut sums = FProbabilities::<B>::default();
    sums.add(&logits, &generation);
    sums.add(&logits, &BatchGeneration::default()); // nothing accepted: nothing added
    sums.add(&logits, &generation);
    let mut stats = GenerationStats::new(3);
    stats.f_target_prob_sum = 1.0; // what earlier batches of the epoch left
    sums.into_stats(&mut stats);
    let target = 2.0 * (softmax(rows[1], 2) + softmax(rows[3], 0));
    let seed = 2.0 * (softmax(rows[1], 0) + softmax(rows[3], 1));
    assert!((stats.f_target_prob_sum - 1.0 - target).abs() < 1e-5, "{} vs {}", stats.f_target_prob_sum - 1.0, target);
    assert!((stats.f_seed_prob_sum - seed).abs() < 1e-5, "{} vs {seed}", stats.f_seed_prob_sum);
}
