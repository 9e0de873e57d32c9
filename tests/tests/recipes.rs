//! Recipe loading: shipped recipes, inheritance, overrides and named validation errors.

use std::path::{Path, PathBuf};

use m2m_burn_plugin::data::{Imbalance, ImbalanceProfile};
use m2m_burn_plugin::recipe::{load_recipe, to_ron, LoadError};

fn recipes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const BASE: &str = r#"(
    name: "t",
    dataset: (name: FashionMnist, imbalance: Exponential, ratio: 100.0, selection: FirstInOrder,
              data_seed: 0, eval_split: ValFromTest(val_fraction: 0.1),
              augmentation: (crop_padding: 4, horizontal_flip: false)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.1, momentum: 0.9, weight_decay: 2e-4),
    schedule: (epochs: 10, warmup_epochs: 1, milestones: [(epoch: 5, factor: 0.1), (epoch: 8, factor: 0.01)]),
    batch_size: 64,
    seed: 1,
)"#;

fn err_of(dir: &Path, overrides: &[&str]) -> String {
    let p = write(dir, "r.ron", BASE);
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    format!("{:#}", anyhow::Error::from(load_recipe(&p, &o).unwrap_err()))
}

#[test]
fn every_shipped_recipe_checks_and_round_trips() {
    let mut n = 0;
    for entry in std::fs::read_dir(recipes_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.extension().is_none_or(|e| e != "ron") || name.ends_with("-base.ron") {
            continue;
        }
        let recipe = load_recipe(&path, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The resolved form is itself a loadable recipe with the same content.
        let tmp = tempfile::tempdir().unwrap();
        let again = write(tmp.path(), "resolved.ron", &to_ron(&recipe.raw));
        assert_eq!(load_recipe(&again, &[]).unwrap(), recipe, "{name}");
        n += 1;
    }
    assert!(n >= 4, "expected the shipped recipes, found {n}");
}

#[test]
fn paper_recipe_has_the_paper_schedule() {
    let r = load_recipe(&recipes_dir().join("erm-cifar10-lt100.ron"), &[]).unwrap();
    let lr: Vec<f64> = [0, 4, 5, 159, 160, 179, 180, 199].iter().map(|&e| r.schedule.lr_at_epoch(e)).collect();
    let expect = [0.02, 0.1, 0.1, 0.1, 1e-3, 1e-3, 1e-5, 1e-5];
    for (a, b) in lr.iter().zip(expect) {
        assert!((a - b).abs() < 1e-12, "{lr:?}");
    }
    assert_eq!((r.batch_size, r.epochs), (128, 200));
    assert_eq!(r.optimizer.weight_decay, 2e-4);
}

#[test]
fn base_inheritance_and_overrides() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "base.ron", BASE);
    let child = write(tmp.path(), "child.ron", r#"(base: "base.ron", name: "child", dataset: (ratio: 10.0))"#);
    let r = load_recipe(&child, &[]).unwrap();
    assert_eq!(r.name, "child");
    assert_eq!(r.dataset.imbalance, Imbalance::Cut { profile: ImbalanceProfile::Exponential, ratio: 10.0 });
    assert_eq!(r.batch_size, 64); // from the base
    assert_eq!(r.dataset.augmentation.crop_padding, 4); // sibling fields of an overridden one survive
    let r = load_recipe(
        &child,
        &["dataset.ratio=50".into(), "schedule.epochs=20".into(), "model.architecture=ResNet32".into()],
    )
    .unwrap();
    assert_eq!(
        (r.dataset.imbalance, r.epochs),
        (Imbalance::Cut { profile: ImbalanceProfile::Exponential, ratio: 50.0 }, 20)
    );
    assert_eq!(r.architecture, m2m_burn_plugin::model::Architecture::ResNet32);
}

#[test]
fn base_cycles_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "a.ron", r#"(base: "b.ron")"#);
    let b = write(tmp.path(), "b.ron", r#"(base: "a.ron")"#);
    assert!(matches!(load_recipe(&b, &[]), Err(LoadError::Cycle { .. })));
}

#[test]
fn unknown_fields_are_rejected_with_their_name() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "r.ron", &BASE.replace("batch_size: 64", "batch_sise: 64"));
    let e = load_recipe(&p, &[]).unwrap_err().to_string();
    assert!(e.contains("r.ron") && e.contains("batch_sise"), "{e}");
    let e = err_of(tmp.path(), &["dataset.rato=3"]);
    assert!(e.contains("rato") && e.contains("--set"), "{e}");
    // `--set name="x"` typed in a shell arrives without its quotes: the error says how to write it.
    let e = err_of(tmp.path(), &["name=my-run"]);
    assert!(e.contains(r#"--set 'name="my-run"'"#), "{e}");
}

#[test]
fn malformed_ron_reports_the_position() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "r.ron", "(name: \"x\", batch_size: )");
    let e = load_recipe(&p, &[]).unwrap_err().to_string();
    assert!(e.contains("r.ron") && e.contains("line 1"), "{e}");
}

#[test]
fn out_of_range_values_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["dataset.ratio=0.5"], "dataset.ratio"),
        (&["schedule.epochs=0"], "schedule.epochs"),
        (&["schedule.milestones=[(epoch: 5, factor: 0.1), (epoch: 4, factor: 0.01)]"], "schedule.milestones"),
        (&["schedule.milestones=[(epoch: 10, factor: 0.1)]"], "schedule.milestones"),
        (&["schedule.warmup_epochs=6"], "schedule.warmup_epochs"),
        (&["optimizer.lr=-1.0"], "optimizer.lr"),
        (&["optimizer.momentum=1.5"], "optimizer.momentum"),
        (&["batch_size=0"], "batch_size"),
        (&["dataset.eval_split=ValFromTest(val_fraction: 1.5)"], "dataset.eval_split.val_fraction"),
        (&["dataset.imbalance=Step(minority_start: 10)"], "dataset.imbalance.minority_start"),
        (&["dataset.augmentation=(crop_padding: 40, horizontal_flip: false)"], "dataset.augmentation.crop_padding"),
        (&["sampler=(kind: ClassBalanced, from_epoch: 11)"], "sampler.from_epoch"),
        (&["dataset.max_eval_per_class=0"], "dataset.max_eval_per_class"),
        (
            &["loss=(weighting: (kind: InverseFrequency, from_epoch: 11), weighted_mean: WeightSum)"],
            "loss.weighting.from_epoch",
        ),
        (
            &["loss=(weighting: (kind: EffectiveNumber(beta: 1.5)), weighted_mean: WeightSum)"],
            "loss.weighting.kind.beta",
        ),
        (&["loss=(kind: Ldam(max_margin: 0.0, scale: 30.0))"], "loss.kind.max_margin"),
        (&["loss=(kind: Ldam(max_margin: 0.5, scale: -1.0))"], "loss.kind.scale"),
        (&["loss=(kind: LogitAdjusted(tau: -1.0))"], "loss.kind.tau"),
    ];
    for (overrides, field) in cases {
        let e = err_of(tmp.path(), overrides);
        assert!(e.contains(&format!("{field}:")) && e.contains("r.ron"), "{overrides:?}: {e}");
    }
}

#[test]
fn backend_and_loss_fields_resolve() {
    use m2m_burn_plugin::backend::BackendChoice;
    use m2m_core::loss::{LossKind, WeightedMean};
    use m2m_core::weighting::ClassWeighting;
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "r.ron", BASE);
    let plain = load_recipe(&p, &[]).unwrap();
    assert_eq!(plain.backend, BackendChoice::Cpu);
    assert_eq!((plain.loss.kind, plain.loss.weighting, plain.cosine_head), (LossKind::CrossEntropy, None, false));
    let set = |o: &[&str]| load_recipe(&p, &o.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    assert_eq!(set(&["backend=Cuda(device: 1)"]).backend, BackendChoice::Cuda { device: 1 });
    let r = set(&["loss=(kind: Ldam(max_margin: 0.5, scale: 30.0), weighting: (kind: EffectiveNumber(beta: 0.999), from_epoch: 2), weighted_mean: WeightSum)"]);
    assert!(r.cosine_head, "LDAM implies the cosine head");
    assert_eq!(r.loss.weighted_mean, WeightedMean::WeightSum);
    let counts = [100, 10, 1];
    assert_eq!(r.loss.weights_at(1, &counts), None, "unit weights before the deferred epoch");
    assert_eq!(r.loss.weights_at(2, &counts), Some(ClassWeighting::EffectiveNumber { beta: 0.999 }.weights(&counts)));
}

#[test]
fn missing_fields_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "r.ron", &BASE.replace("seed: 1,", ""));
    let e = load_recipe(&p, &[]).unwrap_err().to_string();
    assert!(e.contains("seed: missing"), "{e}");
}

/// The three places where the M2m reference code and its paper (or README) differ are
/// recipe fields with the code as the default (docs/m2m.md): each alternative changes its
/// own part of the checked recipe and nothing else.
#[test]
fn reference_or_paper_choices_change_only_their_part() {
    use m2m_core::translation::SeedSelection;
    use m2m_core::weighting::ClassWeighting;
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "r.ron", BASE);
    let set = |o: &[&str]| load_recipe(&p, &o.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let m2m = "m2m=(g: Checkpoint(\"g\"), from_epoch: 5)";
    let drw = "loss=(weighting: (kind: EffectiveNumber(beta: 0.9999), from_epoch: 5), weighted_mean: BatchSize)";
    let code = set(&[m2m, drw]);
    let plan = code.m2m.as_ref().unwrap();
    // The code's choices by default: seeds per sample, gamma 0.9 (run.sh), effective-number DRW.
    assert_eq!((plan.translation.seed_selection(), plan.translation.gamma()), (SeedSelection::PerSample, 0.9));
    // Seeds class first: only the translation's seed rule changes.
    let paper = set(&[m2m, drw, "m2m.seed_selection=ClassFirst"]);
    let p2 = paper.m2m.as_ref().unwrap();
    assert_eq!(p2.translation.seed_selection(), SeedSelection::ClassFirst);
    let same_params = p2.translation.params().with_seed_selection(SeedSelection::PerSample);
    assert_eq!(same_params, plan.translation.params());
    assert_eq!((&paper.loss, &paper.sampler, paper.epochs), (&code.loss, &code.sampler, code.epochs));
    // gamma 0.99 (config.py's default): only the acceptance threshold changes.
    let strict = set(&[m2m, drw, "m2m.gamma=0.99"]);
    let p3 = strict.m2m.as_ref().unwrap();
    assert_eq!(p3.translation.params().with_gamma(0.9), plan.translation.params());
    // DRW with 1/N weights instead of effective numbers: only the weights after epoch 5.
    let inverse = set(&[m2m, "loss=(weighting: (kind: InverseFrequency, from_epoch: 5), weighted_mean: BatchSize)"]);
    let counts = [5000, 500, 50];
    let (eff, inv) = (code.loss.weights_at(5, &counts).unwrap(), inverse.loss.weights_at(5, &counts).unwrap());
    assert_eq!(inv, ClassWeighting::InverseFrequency.weights(&counts));
    assert!(eff.iter().zip(&inv).any(|(a, b)| (a - b).abs() > 1e-3), "{eff:?} vs {inv:?}");
    assert_eq!((code.loss.weights_at(4, &counts), inverse.loss.weights_at(4, &counts)), (None, None));
    assert_eq!((inverse.m2m.as_ref(), inverse.loss.kind), (code.m2m.as_ref(), code.loss.kind));
}
