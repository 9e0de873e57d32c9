//! Runs that start as a fork of another run's first epochs (`start_from: (run: ...)`, and
//! what suites do): on the CPU backend a fork equals a from-scratch run bit for bit.

use std::path::Path;

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::model::{load_classifier, Net};
use m2m_burn_plugin::recipe::{load_recipe, shared_epochs, Recipe};
use m2m_burn_plugin::run::{run_recipe_with, Prefixes, ProgressView};
use m2m_burn_plugin::run_dir::{EpochRecord, FinalMetrics, RunDir};
use m2m_tests::{records, snapshot, write_idx_dataset};

/// ERM on the tiny data set; `extra` adds the method's fields.
fn recipe(dir: &Path, data: &Path, name: &str, extra: &str) -> Recipe {
    let path = dir.join(format!("{name}.ron"));
    let text = format!(
        r#"(
    name: "{name}",
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 4.0, selection: SeededShuffle,
              data_seed: 3, eval_split: ValFromTest(val_fraction: 0.2),
              augmentation: (crop_padding: 2, horizontal_flip: true)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
    schedule: (epochs: 4, warmup_epochs: 1, milestones: [(epoch: 2, factor: 0.1)]),
    batch_size: 32,
    eval_batch_size: 64,
    seed: 7,
    output_dir: "{}",
    {extra}
)"#,
        data.display(),
        dir.join("runs").display()
    );
    std::fs::write(&path, text).unwrap();
    load_recipe(&path, &[]).unwrap()
}

fn run(r: &Recipe, prefixes: Prefixes) -> Result<bool, m2m_burn_plugin::Error> {
    run_recipe_with::<Cpu>(r, Default::default(), ProgressView::Log, &prefixes).map(|o| o.trained_now)
}

/// Everything of a record but its wall time.
fn without_time(records: Vec<EpochRecord>) -> Vec<EpochRecord> {
    records.into_iter().map(|r| EpochRecord { seconds: 0.0, ..r }).collect()
}

fn final_metrics(run: &Path) -> FinalMetrics {
    let m = RunDir::new(run.to_path_buf()).read_final().unwrap().unwrap();
    FinalMetrics {
        mean_epoch_seconds: 0.0,
        recipe: String::new(),
        last: EpochRecord { seconds: 0.0, ..m.last },
        best_val: EpochRecord { seconds: 0.0, ..m.best_val },
        ..m
    }
}

fn weights(r: &Recipe, run: &Path, file: &str) -> Vec<Vec<f32>> {
    let spec = r.model_spec(&r.dataset.known_format().unwrap());
    snapshot::<Cpu, Net<Cpu>>(&load_classifier::<Cpu>(&spec, &run.join(file), &Default::default()).unwrap())
}

const DRS: &str = "sampler: (kind: ClassBalanced, from_epoch: 2),";
const DRW: &str = "loss: (weighting: (kind: EffectiveNumber(beta: 0.999), from_epoch: 2), weighted_mean: BatchSize),";

/// A folder with the tiny data set and a finished ERM run that kept its fork point at
/// epoch 2: (folder, data, runs folder, the ERM recipe).
fn erm_with_fork_point() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf, Recipe) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, false);
    let runs = tmp.path().join("runs");
    let erm = recipe(tmp.path(), &data, "erm", "");
    assert!(run(&erm, Prefixes { keep: vec![2], ..Default::default() }).unwrap());
    (tmp, data, runs, erm)
}

#[test]
fn forks_equal_from_scratch_runs_bit_for_bit() {
    let (tmp, data, runs, erm) = erm_with_fork_point();
    // The fork point: burn's checkpoint of epoch 2 kept beyond the last two, and the best
    // model as it was then.
    assert!(
        runs.join("erm/burn/checkpoint/model-2.mpk").is_file()
            && !runs.join("erm/burn/checkpoint/model-1.mpk").exists()
    );
    assert!(runs.join("erm/fork-points/epoch-2/model-best-val.mpk").is_file());

    for (method, extra) in [("drs", DRS), ("drw", DRW)] {
        let scratch = recipe(tmp.path(), &data, &format!("{method}-scratch"), extra);
        assert_eq!(shared_epochs(&erm, &scratch), 2, "{method}");
        assert!(run(&scratch, Prefixes::default()).unwrap());
        // Forked by the suite's mechanism (the run's recipe unchanged) and by the recipe field.
        let by_suite = recipe(tmp.path(), &data, &format!("{method}-fork"), extra);
        assert!(run(&by_suite, Prefixes { fork_from: Some((runs.join("erm"), 2)), ..Default::default() }).unwrap());
        let field = format!("{extra} start_from: (run: \"{}\", epoch: 2),", runs.join("erm").display());
        let by_recipe = recipe(tmp.path(), &data, &format!("{method}-field"), &field);
        assert!(run(&by_recipe, Prefixes::default()).unwrap());
        let reference = runs.join(format!("{method}-scratch"));
        for fork in [format!("{method}-fork"), format!("{method}-field")] {
            let dir = runs.join(&fork);
            assert_eq!(without_time(records(&dir)), without_time(records(&reference)), "{fork}: metrics");
            assert_eq!(final_metrics(&dir), final_metrics(&reference), "{fork}: final metrics");
            for file in ["model-last", "model-best-val"] {
                assert!(weights(&scratch, &dir, file) == weights(&scratch, &reference, file), "{fork}: {file}");
            }
            let record = RunDir::new(dir.clone()).read_fork().unwrap().unwrap();
            assert_eq!((record.source, record.epoch), (runs.join("erm"), 2));
            // The epochs after the fork were trained by the fork (not copied).
            assert_ne!(records(&dir)[3].seconds, records(&reference)[3].seconds);
        }
        assert!(RunDir::new(reference).read_fork().unwrap().is_none());
    }
    // A finished fork is not trained again.
    assert!(!run(
        &recipe(tmp.path(), &data, "drs-fork", DRS),
        Prefixes { fork_from: Some((runs.join("erm"), 2)), ..Default::default() }
    )
    .unwrap());
}

#[test]
fn forks_that_would_not_be_exact_are_refused() {
    let (tmp, data, runs, _) = erm_with_fork_point();
    let from = |name: &str, extra: &str, epoch: usize| {
        let r = recipe(tmp.path(), &data, name, extra);
        run(&r, Prefixes { fork_from: Some((runs.join("erm"), epoch)), ..Default::default() }).unwrap_err().to_string()
    };
    // DRS differs from epoch 2: a fork at 3 would not be exact.
    let e = from("late", DRS, 3);
    assert!(e.contains("epoch-3") || e.contains("epoch 3"), "{e}");
    let e = from("other-eval", &DRS.replace("sampler", "eval_logit_adjustment: 1.0, sampler"), 2);
    assert!(e.contains("train differently from epoch 0"), "{e}");
    // Nothing was written for the refused forks.
    assert!(!runs.join("late").exists() && !runs.join("other-eval").exists());
    // An epoch the source did not keep.
    let e = from("unkept", DRS, 1);
    assert!(e.contains("model-1.mpk is missing") && e.contains("--keep-epochs 1"), "{e}");
    // A source that is not a run.
    let r = recipe(tmp.path(), &data, "nowhere", DRS);
    let e = run(&r, Prefixes { fork_from: Some((tmp.path().join("missing"), 2)), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing") && e.contains("has not finished an epoch"), "{e}");
    // A fork at epoch 2 of a source with a different recipe checks the source's own recipe.
    let e = from("wrong-shape", &DRS.replace("from_epoch: 2", "from_epoch: 1"), 2);
    assert!(e.contains("train differently from epoch 1"), "{e}");
}

#[test]
fn a_suite_resolves_g_from_another_methods_cell() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("base.ron"), m2m_tests::tiny_suite_base(&tmp.path().join("data"), 3)).unwrap();
    let write = |methods: &str| {
        let p = tmp.path().join("s.ron");
        std::fs::write(
            &p,
            format!(
                r#"(name: "g", base: "base.ron", output_dir: "{}", seeds: [0, 1], methods: [{methods}])"#,
                tmp.path().join("out").display()
            ),
        )
        .unwrap();
        m2m_burn_plugin::suite::load_suite(&p, None)
    };
    let m2m = r#"(name: "M2m", recipe: (m2m: (g: Method("ERM"), from_epoch: 1)))"#;
    let suite = write(&format!(r#"(name: "ERM"), {m2m}"#)).unwrap();
    let g_of = |i: usize| match &suite.cells[i].recipe.m2m.as_ref().unwrap().g {
        m2m_burn_plugin::recipe::BaselineSource::Checkpoint(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    // Each M2m cell takes the ERM cell of its own seed.
    assert_eq!(g_of(1), tmp.path().join("out/cells/ERM.Mnist.r4.d3.s0"));
    assert_eq!(g_of(3), tmp.path().join("out/cells/ERM.Mnist.r4.d3.s1"));
    let e = write(&format!(r#"(name: "ERM"), {}"#, m2m.replace("\"ERM\")", "\"CE\")"))).unwrap_err().to_string();
    assert!(e.contains("m2m.g") && e.contains("\"CE\""), "{e}");
    let e = write(&m2m.replace("\"ERM\")", "\"M2m\")")).unwrap_err().to_string();
    assert!(e.contains("without M2m"), "{e}");
    // Outside a suite the name means nothing.
    let r = tmp.path().join("r.ron");
    std::fs::write(&r, "(base: \"base.ron\", name: \"x\", seed: 0, m2m: (g: Method(\"ERM\"), from_epoch: 1))").unwrap();
    let e = load_recipe(&r, &[]).unwrap_err().to_string();
    assert!(e.contains("m2m.g") && e.contains("only suites"), "{e}");
}

/// A suite whose cells fork from forks: DRS forks from ERM after epoch 1; DRS with
/// deferred re-weighting (DRS-DRW) shares two epochs with DRS and one with ERM, so it forks
/// from the DRS cell; M2m comes first and takes DRS as its g, so DRS is trained on demand,
/// and still as the fork its plan says.
#[test]
fn forks_of_forks_are_planned_and_equal_from_scratch_runs() {
    use m2m_burn_plugin::suite::{load_suite, plan_forks, run_suite, ForkPlan, Shard};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, false);
    std::fs::write(tmp.path().join("base.ron"), m2m_tests::tiny_suite_base(&data, 4)).unwrap();
    let drs = "sampler: (kind: ClassBalanced, from_epoch: 1)";
    let drw = "loss: (weighting: (kind: EffectiveNumber(beta: 0.999), from_epoch: 2), weighted_mean: BatchSize)";
    let path = tmp.path().join("s.ron");
    std::fs::write(
        &path,
        format!(
            r#"(name: "ff", base: "base.ron", output_dir: "{}", seeds: [5], methods: [
                (name: "ERM"),
                (name: "M2m", recipe: (m2m: (g: Method("DRS"), from_epoch: 3))),
                (name: "DRS", recipe: ({drs})),
                (name: "DRS-DRW", recipe: ({drs}, {drw})),
            ])"#,
            tmp.path().join("out").display()
        ),
    )
    .unwrap();
    let suite = load_suite(&path, None).unwrap();
    let (plans, keep) = plan_forks(&suite.cells);
    assert_eq!(plans[2], Some(ForkPlan { source: 0, epoch: 1 }), "DRS from ERM");
    assert_eq!(plans[3], Some(ForkPlan { source: 2, epoch: 2 }), "DRS-DRW from the DRS fork");
    assert_eq!(plans[1], Some(ForkPlan { source: 0, epoch: 3 }), "M2m from ERM");
    assert_eq!((keep[0].clone(), keep[2].clone()), (vec![3, 1], vec![2]));

    let outcome = run_suite::<Cpu>(&suite, Shard::ALL, Default::default(), ProgressView::Log).unwrap();
    assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
    let name = |j: usize| suite.cells[j].key.run_name();
    let fork_of = |j: usize| RunDir::new(suite.cells[j].recipe.run_dir()).read_fork().unwrap().map(|f| f.epoch);
    // DRS was trained first, as M2m's g, and as a fork of ERM all the same.
    assert_eq!(fork_of(2), Some(1), "{}", name(2));
    assert_eq!(fork_of(3), Some(2), "{}", name(3));
    let fork = RunDir::new(suite.cells[3].recipe.run_dir()).read_fork().unwrap().unwrap();
    assert_eq!(fork.source, suite.cells[2].recipe.run_dir());

    // The fork of the fork equals its recipe trained from epoch 0 on its own.
    let cell = &suite.cells[3];
    let mut raw = cell.recipe.raw.clone();
    raw.output_dir = Some(tmp.path().join("scratch"));
    let scratch = raw.check().unwrap();
    assert!(run(&scratch, Prefixes::default()).unwrap());
    let (dir, reference) = (cell.recipe.run_dir(), scratch.run_dir());
    assert_eq!(without_time(records(&dir)), without_time(records(&reference)), "metrics");
    assert_eq!(final_metrics(&dir), final_metrics(&reference), "final metrics");
    for file in ["model-last", "model-best-val"] {
        assert!(weights(&scratch, &dir, file) == weights(&scratch, &reference, file), "{file}");
    }
}
