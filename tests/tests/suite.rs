//! Suites: expansion of a suite file into cells, its checks, running with skip and
//! shards (a sharded run merges to the same report as an unsharded one), and the
//! report's formulas on known values.

use std::path::Path;

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::Imbalance;
use m2m_burn_plugin::suite::{
    collect, csv, deal, load_suite, markdown, plan_forks, run_suite, summarize, write_report, CellKey, CellResult,
    Metric, Shard, SuiteManifest,
};
use m2m_burn_plugin::train::ProgressView;
use m2m_core::metrics::ClassificationReport;
use m2m_core::sampling::SamplerKind;
use m2m_tests::{tiny_suite_base, write_idx_dataset};

/// Writes `base.ron` and `suite.ron` into `dir`; `methods` and `extra` are RON fragments.
fn write_suite(dir: &Path, data: &Path, epochs: usize, methods: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("base.ron"), tiny_suite_base(data, epochs)).unwrap();
    let path = dir.join("suite.ron");
    std::fs::write(
        &path,
        format!(
            r#"(name: "t", base: "base.ron", output_dir: "{}", baseline: "ERM",
    methods: [{methods}], {extra})"#,
            dir.join("out").display()
        ),
    )
    .unwrap();
    path
}

const TWO_METHODS: &str = r#"(name: "ERM"),
    (name: "LDAM-DRW", recipe: (loss: (kind: Ldam(max_margin: 0.5, scale: 30.0),
        weighting: (kind: EffectiveNumber(beta: 0.999), from_epoch: 1), weighted_mean: BatchSize)))"#;

#[test]
fn a_suite_expands_into_checked_cells_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let methods = r#"(name: "ERM"), (name: "DRS", recipe: (sampler: (kind: ClassBalanced, from_epoch: 1)))"#;
    let path = write_suite(
        tmp.path(),
        Path::new("/nowhere"),
        2,
        methods,
        "ratios: [4.0, 2.0], data_seeds: [5], seeds: [0, 1]",
    );
    let suite = load_suite(&path, None).unwrap();
    assert_eq!(suite.methods, vec!["ERM", "DRS"]);
    let names: Vec<String> = suite.cells.iter().map(|c| c.key.run_name()).collect();
    assert_eq!(
        names,
        [
            "ERM.Mnist.r4.d5.s0",
            "DRS.Mnist.r4.d5.s0",
            "ERM.Mnist.r4.d5.s1",
            "DRS.Mnist.r4.d5.s1",
            "ERM.Mnist.r2.d5.s0",
            "DRS.Mnist.r2.d5.s0",
            "ERM.Mnist.r2.d5.s1",
            "DRS.Mnist.r2.d5.s1",
        ]
    );
    let c = &suite.cells[5];
    assert_eq!((c.key.ratio, c.recipe.dataset.data_seed, c.recipe.seed), (Some(2.0), 5, 0));
    assert!(matches!(c.recipe.dataset.imbalance, Imbalance::Cut { ratio: 2.0, .. }));
    assert_eq!(c.recipe.output_dir, tmp.path().join("out").join("cells"));
    assert_eq!(c.recipe.name, "DRS.Mnist.r2.d5.s0");
    assert_eq!((c.recipe.sampler.value, c.recipe.sampler.from_epoch), (SamplerKind::ClassBalanced, 1));
    assert_eq!(suite.cells[4].recipe.sampler.value, SamplerKind::Natural);

    // Shards get whole fork families (DRS forks from the ERM cell of its ratio and seed),
    // the costliest first to the least loaded shard, and together cover each cell once.
    let shards: Vec<Shard> = ["0/3", "1/3", "2/3"].iter().map(|s| s.parse().unwrap()).collect();
    let (plans, _) = plan_forks(&suite.cells);
    assert_eq!(plans[1].map(|p| (p.source, p.epoch)), Some((0, 1)));
    let deal = deal(&suite.cells, &plans, 3);
    let dealt: Vec<Vec<usize>> = shards.iter().map(|&s| deal.cells_of(s)).collect();
    assert_eq!(dealt, vec![vec![0, 1, 6, 7], vec![2, 3], vec![4, 5]]);
    let epochs = suite.cells[0].recipe.epochs as f64;
    assert_eq!(deal.cost, vec![2.0 * (2.0 * epochs - 1.0), 2.0 * epochs - 1.0, 2.0 * epochs - 1.0]);
    for bad in ["3/3", "1", "a/2", "0/0"] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
    // --output-dir moves the cells.
    let moved = load_suite(&path, Some(&tmp.path().join("elsewhere"))).unwrap();
    assert_eq!(moved.cells[0].recipe.output_dir, tmp.path().join("elsewhere").join("cells"));
}

#[test]
fn suite_errors_name_the_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let data = Path::new("/nowhere");
    let cases = [
        (r#"(name: "ERM"), (name: "ERM")"#, "seeds: [0]", "methods[1].name"),
        (r#"(name: "ERM"), (name: "X", recipe: (seed: 3))"#, "seeds: [0]", "methods[1].recipe.seed"),
        (r#"(name: "ERM"), (name: "a/b")"#, "seeds: [0]", "methods[1].name"),
        (r#"(name: "ERM")"#, "seeds: []", "seeds"),
        (r#"(name: "ERM")"#, "seeds: [0], ratios: []", "ratios"),
        (r#"(name: "ERM")"#, "seeds: [0], colour: 3", "colour"),
        (r#"(name: "ERM"), (name: "Bad", recipe: (optimizer: (lr: -1.0)))"#, "seeds: [0]", "optimizer.lr"),
        (r#"(name: "ERM"), (name: "F", recipe: (loss: (kind: Focal(gamma: -1.0))))"#, "seeds: [0]", "loss.kind.gamma"),
        (
            r#"(name: "ERM"), (name: "W", recipe: (loss: (weighting: (kind: InverseFrequency))))"#,
            "seeds: [0]",
            "loss.weighted_mean",
        ),
        (
            r#"(name: "ERM"), (name: "L", recipe: (model: (cosine_head: false), loss: (kind: Ldam(max_margin: 0.5, scale: 30.0))))"#,
            "seeds: [0]",
            "model.cosine_head",
        ),
    ];
    for (methods, extra, field) in cases {
        let path = write_suite(tmp.path(), data, 2, methods, extra);
        let e = load_suite(&path, None).unwrap_err().to_string();
        assert!(e.contains("suite.ron") && e.contains(field), "{field}: {e}");
    }
    // The baseline must be one of the methods.
    std::fs::write(
        tmp.path().join("s2.ron"),
        r#"(name: "t", base: "base.ron", output_dir: "o", baseline: "ERM", methods: [(name: "A")], seeds: [0])"#,
    )
    .unwrap();
    let e = load_suite(&tmp.path().join("s2.ron"), None).unwrap_err().to_string();
    assert!(e.contains("baseline"), "{e}");
}

/// A searched M2m method over a 6-epoch base, M2m from epoch 2; `axes` and `halving` are RON.
fn search_methods(axes: &str, halving: &str) -> String {
    format!(
        r#"(name: "ERM"), (name: "M2m", recipe: (m2m: (g: Method("ERM"), from_epoch: 2)),
        search: (axes: [{axes}], halving: {halving}))"#
    )
}

#[test]
fn a_search_expands_into_trials_that_fork_from_the_shared_prefix_on_one_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let axes =
        r#"(field: "m2m.step_size", values: ["0.1", "0.5"]), (field: "m2m.gamma", values: ["0.9", "0.5", "0.1"])"#;
    let methods = search_methods(axes, "(first_rung: 1, eta: 3)");
    let path = write_suite(tmp.path(), Path::new("/nowhere"), 6, &methods, "seeds: [0, 1]");
    let suite = load_suite(&path, None).unwrap();
    assert_eq!(suite.methods, ["ERM", "M2m"]);
    let names: Vec<String> = suite.cells.iter().map(|c| c.key.run_name()).collect();
    assert_eq!(names.len(), 2 * (1 + 6));
    assert_eq!(names[1], "M2m-t0.Mnist.r4.d3.s0");
    let t4 = &suite.cells[5];
    let trial = t4.trial.as_ref().unwrap();
    assert_eq!(trial.setting_text(), "m2m.step_size=0.5, m2m.gamma=0.5");
    assert_eq!(trial.group.run_name(), "M2m.Mnist.r4.d3.s0");
    let m2m = t4.recipe.m2m.as_ref().unwrap();
    assert_eq!((m2m.translation.step_size(), m2m.translation.gamma()), (0.5, 0.5));
    // The report has one place per search; the manifest names the searched method.
    let manifest = suite.manifest();
    assert_eq!(manifest.searched, ["M2m"]);
    let keys: Vec<String> = manifest.cells.iter().map(|k| k.run_name()).collect();
    assert_eq!(keys, ["ERM.Mnist.r4.d3.s0", "M2m.Mnist.r4.d3.s0", "ERM.Mnist.r4.d3.s1", "M2m.Mnist.r4.d3.s1"]);
    // Every trial forks from its seed's ERM cell at epoch 2; rungs end at 3, 5 (2 + 3) and 6,
    // keeping 6 -> 2 -> 1: trials planned to 3 epochs but the first two.
    let (plans, _) = plan_forks(&suite.cells);
    for j in 1..7 {
        assert_eq!(plans[j].map(|p| (p.source, p.epoch)), Some((0, 2)), "{}", names[j]);
    }
    let ends: Vec<usize> = suite.cells[1..7].iter().map(|c| c.trial.as_ref().unwrap().planned_end).collect();
    assert_eq!(ends, [6, 5, 3, 3, 3, 3]);
    // Each seed's search (with its ERM source) on one shard.
    let dealt = deal(&suite.cells, &plans, 2);
    assert!(dealt.shard_of[..7].iter().all(|&s| s == dealt.shard_of[0]));
    assert!(dealt.shard_of[7..].iter().all(|&s| s == dealt.shard_of[7]) && dealt.shard_of[7] != dealt.shard_of[0]);
}

#[test]
fn search_errors_name_the_method_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let step = r#"(field: "m2m.step_size", values: ["0.1", "0.5"])"#;
    let halving = "(first_rung: 1, eta: 2)";
    let cases = [
        (
            search_methods(step, "(first_rung: 1, eta: 1)"),
            "methods[1].search.halving: search.halving.eta must be at least 2",
        ),
        (search_methods(step, "(first_rung: 0, eta: 2)"), "methods[1].search.halving"),
        (
            search_methods(r#"(field: "m2m.nope", values: ["1"])"#, halving),
            "methods[1].search.axes[0]: --set m2m.nope=1",
        ),
        (
            search_methods(r#"(field: "seed", values: ["1", "2"])"#, halving),
            "methods[1].search.axes[0].field: `seed` is set by the suite",
        ),
        (search_methods(r#"(field: "m2m.gamma", values: [])"#, halving), "search axis `m2m.gamma`: no values"),
        (
            search_methods(r#"(field: "schedule.epochs", values: ["4", "6"])"#, halving),
            "the trials train for different `epochs`",
        ),
        (
            search_methods(r#"(field: "m2m.step_size", values: ["-1.0"])"#, halving),
            "M2m-t0.Mnist.r4.d3.s0: m2m.step_size",
        ),
        (
            format!("{}, (name: \"M2m-t1\")", search_methods(step, halving)),
            "its trial `M2m-t1` has the name of another method",
        ),
        (
            search_methods(step, "(first_rung: 1, eta: 2), prune: (min_acceptance: 1.5, batches: 2)"),
            "methods[1].search.prune: search.prune: min_acceptance must be a fraction in [0, 1), not 1.5",
        ),
        (
            format!(
                r#"(name: "ERM"), (name: "S", search: (axes: [(field: "optimizer.lr", values: ["0.1"])], halving: {halving},
                prune: (min_acceptance: 0.01, batches: 2)))"#
            ),
            "methods[1].search.prune: probes M2m's translations: the method has no `m2m`",
        ),
        (
            format!(
                r#"(name: "ERM"), (name: "S", search: (axes: [(field: "optimizer.lr", values: ["0.1", "0.05"])], halving: {halving})),
                (name: "Late", recipe: (m2m: (g: Method("S"), from_epoch: 2)))"#
            ),
            "Method(\"S\") is searched: g must be one fixed method",
        ),
    ];
    for (methods, expected) in cases {
        let path = write_suite(tmp.path(), Path::new("/nowhere"), 6, &methods, "seeds: [0]");
        let e = load_suite(&path, None).unwrap_err().to_string();
        assert!(e.contains("suite.ron") && e.contains(expected), "{expected}: {e}");
    }
}

#[test]
fn sharded_runs_merge_into_the_same_report_and_finished_cells_are_skipped() {
    // Compares seeded runs: no other test of this binary may draw from Flex's generator meanwhile.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    let path = write_suite(tmp.path(), &data, 2, TWO_METHODS, "seeds: [0, 1]");
    let full = load_suite(&path, None).unwrap();
    let out = run_suite::<Cpu>(&full, Shard::ALL, Default::default(), ProgressView::Log).unwrap();
    assert_eq!((out.trained.len(), out.skipped.len(), out.failed.len()), (4, 0, 0));
    let whole = collect(std::slice::from_ref(&full.output_dir)).unwrap();
    assert!(whole.missing.is_empty());

    // The LDAM cell used the cosine head and deferred weights.
    let ldam = m2m_tests::records(&full.output_dir.join("cells/LDAM-DRW.Mnist.r4.d3.s0"));
    let w = ldam[1].class_weights.as_ref().expect("weights from epoch 1");
    assert!(ldam[0].class_weights.is_none() && w[9] > w[0], "{w:?}");
    let meta = std::fs::read_to_string(full.output_dir.join("cells/LDAM-DRW.Mnist.r4.d3.s0/model-best-val.meta.json"))
        .unwrap();
    assert!(meta.contains("\"cosine_head\": true"), "{meta}");
    let erm0 = m2m_tests::records(&full.output_dir.join("cells/ERM.Mnist.r4.d3.s0"));
    let erm1 = m2m_tests::records(&full.output_dir.join("cells/ERM.Mnist.r4.d3.s1"));
    assert!(erm0.iter().all(|r| r.class_weights.is_none()));
    assert_ne!(erm0[0].train_loss, erm1[0].train_loss, "the seeds differ");

    // Running again trains nothing and leaves the results as they were.
    let final_file = full.output_dir.join("cells/ERM.Mnist.r4.d3.s1/final.json");
    let before = std::fs::read(&final_file).unwrap();
    let again = run_suite::<Cpu>(&full, Shard::ALL, Default::default(), ProgressView::Log).unwrap();
    assert_eq!((again.trained.len(), again.skipped.len()), (0, 4));
    assert_eq!(std::fs::read(&final_file).unwrap(), before);

    // Two shards in two folders, merged, give the same table.
    let mut dirs = Vec::new();
    for (i, s) in ["0/2", "1/2"].iter().enumerate() {
        let dir = tmp.path().join(format!("shard{i}"));
        let suite = load_suite(&path, Some(&dir)).unwrap();
        let o = run_suite::<Cpu>(&suite, s.parse().unwrap(), Default::default(), ProgressView::Log).unwrap();
        assert_eq!(o.trained.len(), 2);
        dirs.push(dir);
    }
    let one_shard = collect(&dirs[..1]).unwrap();
    assert_eq!(one_shard.missing.len(), 2);
    let merged = collect(&dirs).unwrap();
    assert!(merged.missing.is_empty());
    assert_eq!(csv(&merged).unwrap(), csv(&whole).unwrap());
    // The same tables; where the numbers came from differs (other processes, other times).
    let (merged_md, whole_md) = (markdown(&merged, &[]), markdown(&whole, &[]));
    let tables = |md: &str| md.split("\n## Where the numbers came from").next().unwrap().to_string();
    assert_eq!(tables(&merged_md), tables(&whole_md));
    let provenance = merged_md.split("\n## Where the numbers came from").nth(1).expect("a provenance section");
    for (cell, sessions) in &merged.provenance {
        assert_eq!(sessions.len(), 1, "{cell}: one process trained it");
        let line = provenance.lines().find(|l| l.starts_with(&format!("- `{cell}`: "))).expect("a line per cell");
        assert!(line.contains(&sessions[0].started) && line.contains("(finished)"), "{line}");
    }
    assert_eq!(merged.provenance.len(), 4);

    // The written report: Markdown, CSV and a per-class plot as SVG.
    let md = write_report(&merged, &tmp.path().join("report")).unwrap();
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| LDAM-DRW |") && text.contains("plots/per-class-Mnist-r4.svg"), "{text}");
    let svg = std::fs::read_to_string(tmp.path().join("report/plots/per-class-Mnist-r4.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("LDAM-DRW"));

    // A folder of another suite is refused.
    let other = write_suite(&tmp.path().join("shard0"), &data, 3, TWO_METHODS, "seeds: [0, 1]");
    let other_suite = load_suite(&other, Some(&tmp.path().join("other"))).unwrap();
    m2m_burn_plugin::suite::write_manifest(&other_suite).unwrap();
    let e = collect(&[dirs[0].clone(), tmp.path().join("other")]).unwrap_err().to_string();
    assert!(e.contains("different suite"), "{e}");
}

#[test]
fn m2m_cells_show_their_accepted_translations_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    // gamma ~ 0 and beta 0.5: every planned translation passes, so some are accepted.
    let methods = r#"(name: "ERM"),
    (name: "M2m", recipe: (m2m: (g: TrainErm(seed: 5), gamma: 0.000001, beta: 0.5, steps: 2, from_epoch: 1)))"#;
    let path = write_suite(tmp.path(), &data, 2, methods, "seeds: [0]");
    let suite = load_suite(&path, None).unwrap();
    let out = run_suite::<Cpu>(&suite, Shard::ALL, Default::default(), ProgressView::Log).unwrap();
    assert_eq!(out.failed.len(), 0);
    let run = suite.output_dir.join("cells/M2m.Mnist.r4.d3.s0");
    let recs = m2m_tests::records(&run);
    assert!(recs[1].m2m.as_ref().unwrap().total_accepted() > 0);
    // The run draws at most 8 accepted translations: 8 rows of 28x28 images zoomed 4x.
    let img = image::open(run.join("translations.png")).unwrap();
    let rows = (recs[1].m2m.as_ref().unwrap().total_accepted() as u32).min(8);
    assert_eq!(img.height(), 8 + 2 * 8 + rows * (112 + 8) + 8);
    assert!(!suite.output_dir.join("cells/ERM.Mnist.r4.d3.s0/translations.png").exists());

    let report = collect(std::slice::from_ref(&suite.output_dir)).unwrap();
    let md = write_report(&report, &suite.output_dir).unwrap();
    let text = std::fs::read_to_string(md).unwrap();
    assert!(text.contains("![M2m: accepted translations (seed, translation, difference x10) of M2m.Mnist.r4.d3.s0](plots/translations-M2m.Mnist.r4.d3.s0.png)"), "{text}");
    let copied = image::open(suite.output_dir.join("plots/translations-M2m.Mnist.r4.d3.s0.png")).unwrap();
    assert_eq!(copied.height(), img.height());
}

#[test]
fn a_manifest_from_before_the_fingerprint_still_reports() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("suite.json"),
        r#"{"name": "old", "baseline": null, "methods": ["A"], "cells": []}"#,
    )
    .unwrap();
    let r = collect(&[tmp.path().to_path_buf()]).unwrap();
    assert_eq!((r.suite.as_str(), r.total_cells), ("old", 0));
}

fn result(method: &str, dataset: &str, seed: u64, recalls: [f64; 3], m2m: Option<(u64, u64)>) -> CellResult {
    let bacc = recalls.iter().sum::<f64>() / 3.0;
    let gm = recalls.iter().product::<f64>().powf(1.0 / 3.0);
    let test = ClassificationReport {
        num_samples: 300,
        loss: None,
        accuracy: bacc,
        balanced_accuracy: bacc,
        geometric_mean: gm,
        per_class_recall: recalls.iter().map(|&r| Some(r)).collect(),
        major: Some(recalls[0]),
        neutral: Some(recalls[1]),
        minor: Some(recalls[2]),
        many_shot: Some(recalls[0]),
        medium_shot: None,
        few_shot: Some(recalls[2]),
    };
    let m2m = m2m.map(|(attempts, accepted)| m2m_core::translation::GenerationStats {
        slots: 100,
        attempts: vec![0, attempts, attempts],
        accepted: vec![0, accepted, 0],
        ..m2m_core::translation::GenerationStats::new(3)
    });
    CellResult {
        key: CellKey { method: method.into(), dataset: dataset.into(), ratio: Some(100.0), data_seed: 0, seed },
        test,
        selected_on_test: false,
        m2m,
        translations: None,
        forked_from: None,
        imbalance_factor: Some(100.0),
        provenance: Vec::new(),
    }
}

#[test]
fn report_formulas_mean_sample_std_delta_and_published_values() {
    let keys = |m: &str, d: &str| -> Vec<CellKey> {
        (0..3)
            .map(|s| CellKey { method: m.to_string(), dataset: d.into(), ratio: Some(100.0), data_seed: 0, seed: s })
            .collect()
    };
    let mut cells: Vec<CellKey> = Vec::new();
    for d in ["Cifar10", "FashionMnist"] {
        cells.extend(keys("ERM", d));
        cells.extend(keys("M2m", d));
    }
    let manifest = SuiteManifest {
        name: "f".into(),
        fingerprint: String::new(),
        baseline: Some("ERM".into()),
        methods: vec!["ERM".into(), "M2m".into()],
        cells,
        searched: vec![],
    };
    let c10 = "Cifar10";
    let results = vec![
        result("ERM", c10, 0, [0.9, 0.6, 0.3], None),
        result("ERM", c10, 1, [0.9, 0.6, 0.6], None),
        result("ERM", c10, 2, [0.9, 0.9, 0.6], None),
        result("M2m", c10, 0, [0.9, 0.9, 0.9], Some((10, 4))),
        result("M2m", c10, 1, [0.6, 0.9, 0.9], Some((30, 6))),
        result("ERM", "FashionMnist", 0, [1.0, 0.5, 0.0], None),
    ];
    let r = summarize(&manifest, &results, vec!["M2m.FashionMnist.r100.d0.s0".into()]);
    let erm = r.summary("ERM", c10, Some(100.0)).unwrap();
    // bACC per run: 0.6, 0.7, 0.8 -> mean 70 %, sample std 10 points.
    let b = erm.stat(Metric::BalancedAccuracy).unwrap();
    assert!((b.mean - 70.0).abs() < 1e-9 && (b.std.unwrap() - 10.0).abs() < 1e-9 && b.n == 3, "{b:?}");
    // minor: 0.3, 0.6, 0.6 -> 50 %, std sqrt(0.03) = 17.32 points.
    let minor = erm.stat(Metric::Minor).unwrap();
    assert!((minor.mean - 50.0).abs() < 1e-9 && (minor.std.unwrap() - 17.3205).abs() < 1e-3);
    // medium-shot is missing in the runs: no value rather than a made-up one.
    assert!(erm.stat(Metric::MediumShot).is_none());
    // M2m: 2 of 3 runs, bACC 0.9 and 0.8 -> 85 %, Δ = +15 points.
    let m2m = r.summary("M2m", c10, Some(100.0)).unwrap();
    assert_eq!((m2m.finished, m2m.expected), (2, 3));
    assert!((m2m.delta_bacc.unwrap() - 15.0).abs() < 1e-9);
    assert!(erm.delta_bacc.is_none(), "the baseline has no delta to itself");
    assert_eq!(m2m.per_class[0], Some(75.0));
    // Generation statistics add up over runs: 10 of 80 accepted.
    let g = m2m.m2m.as_ref().unwrap();
    assert_eq!((g.total_attempts(), g.total_accepted()), (80, 10));
    // A single run has no std; Fashion-MNIST has no published values, CIFAR-10 ERM has.
    let f = r.summary("ERM", "FashionMnist", Some(100.0)).unwrap();
    assert!(f.stat(Metric::BalancedAccuracy).unwrap().std.is_none() && f.published.is_none());
    assert!((erm.published.unwrap().balanced_accuracy - 70.36).abs() < 1e-9);
    assert!(r.summary("M2m", "FashionMnist", Some(100.0)).unwrap().stat(Metric::BalancedAccuracy).is_none());

    let md = markdown(&r, &[]);
    assert!(md.contains("| ERM | 70.00 ± 10.00 | 3/3 | – | 70.36 (published: LDAM-DRW"), "{md}");
    assert!(md.contains("| M2m | 85.00 ± 7.07 | 2/3 | +15.00 |"), "{md}");
    assert!(md.contains("11 of 12 cells finished. Missing: M2m.FashionMnist.r100.d0.s0."), "{md}");
    let table = csv(&r).unwrap();
    assert!(table.contains("f,M2m,Cifar10,100,bacc,85.0000,7.0711,2,3,15.0000,78.30,"), "{table}");
    assert!(table.contains("f,ERM,Cifar10,100,minor,50.0000,17.3205,3,3,,,"), "{table}");
}

#[test]
fn the_smote_sampler_balances_epochs_without_changing_their_length() {
    use m2m_burn_plugin::data::{Augmentation, ImageSet};
    use m2m_burn_plugin::train::TrainLoader;
    use m2m_core::weighting::Deferred;
    // 60 / 6 images of 2x2 pixels: SMOTE adds 54 images of class 1.
    let labels: Vec<usize> = (0..66).map(|i| usize::from(i >= 60)).collect();
    let pixels: Vec<u8> = (0..66 * 4).map(|i| (i % 251) as u8).collect();
    let set = std::sync::Arc::new(ImageSet::new(1, 2, 2, 2, pixels, labels).unwrap());
    let plan = Deferred::new(SamplerKind::Smote, 1);
    let loader = TrainLoader::<Cpu>::new(set, plan, Augmentation::NONE, 11, 5, Default::default());
    assert_eq!(loader.batches_per_epoch(), 6);
    let count = |epoch| -> (usize, usize) {
        let labels: Vec<usize> = loader.epoch_iter(epoch).flat_map(|b| b.labels).collect();
        (labels.len(), labels.iter().filter(|&&y| y == 1).count())
    };
    // Before from_epoch: the natural order of the 66 real images (6 of class 1).
    assert_eq!(count(0), (66, 6));
    // From it: 66 draws from 120 images, half of them class 1.
    let minority: usize = (1..21).map(|e| count(e).1).sum();
    assert!((minority as f64 / (20.0 * 66.0) - 0.5).abs() < 0.05, "{minority}");
}

#[test]
fn every_shipped_suite_expands_into_valid_cells() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/suites");
    let mut suites = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("methods:") {
            // a base recipe of the suites
            m2m_burn_plugin::recipe::load_recipe(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        let suite = load_suite(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(suite.cells.len() >= suite.methods.len());
        suites += 1;
    }
    assert!(suites >= 4);
    let quick = load_suite(&dir.join("quickstart.ron"), None).unwrap();
    assert_eq!(quick.methods, ["ERM", "DRS", "DRW", "LDAM-DRW", "M2m"]);
    // The paper's tables: both CIFARs at rho 100 and 10, 3 seeds, every method in each.
    let paper = load_suite(&dir.join("cifar-lt-paper.ron"), None).unwrap();
    assert_eq!(paper.cells.len(), paper.methods.len() * 2 * 2 * 3);
    let columns: std::collections::BTreeSet<(String, u64)> =
        paper.cells.iter().map(|c| (c.key.dataset.clone(), c.key.ratio.unwrap() as u64)).collect();
    assert_eq!(columns.len(), 4, "{columns:?}");
    assert!(paper
        .cells
        .iter()
        .all(|c| c.recipe.epochs == 200 && c.recipe.m2m.as_ref().is_none_or(|m| m.from_epoch == 160)));
}

#[test]
fn the_dry_run_time_comes_from_measured_epochs_or_says_not_measured() {
    use m2m_burn_plugin::suite::{estimate, plan_forks, trained_epochs, MEASURED};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/suites");
    // The quickstart: ERM 12 epochs, LDAM-DRW 12 (its loss differs from the start), DRS
    // and DRW forked after epoch 8 (4 each), M2m forked after 8 (4 M2m epochs).
    let quick = load_suite(&dir.join("quickstart.ron"), None).unwrap();
    let (plans, _) = plan_forks(&quick.cells);
    let all: Vec<usize> = (0..quick.cells.len()).collect();
    let epochs: Vec<(usize, usize)> = all.iter().map(|&j| trained_epochs(&quick.cells[j], plans[j])).collect();
    assert_eq!(epochs, [(12, 0), (4, 0), (4, 0), (12, 0), (0, 4)]);
    let small = MEASURED.iter().find(|m| m.architecture == quick.cells[0].recipe.architecture).unwrap();
    // The quickstart's data is the measured epoch's: no scaling.
    assert_eq!(small.train_images, 1236);
    let estimates = estimate(&quick.cells, &plans, &all);
    let cpu = estimates.iter().find(|e| e.backend == "cpu").unwrap();
    let expected = 32.0 * small.plain_seconds + 4.0 * small.m2m_seconds;
    assert!((cpu.seconds.as_ref().unwrap() - expected).abs() < 1e-9, "{cpu:?}");
    assert_eq!(cpu.sources, [small.source]);
    for gpu in estimates.iter().filter(|e| e.backend != "cpu") {
        assert!(gpu.seconds.as_ref().unwrap_err().starts_with("not measured"), "{gpu:?}");
    }
    // Ten times the images, ten times the time (one cell: ERM).
    let tenth = load_suite(&dir.join("quickstart.ron"), None).unwrap();
    let mut cells = tenth.cells;
    cells.truncate(1);
    cells[0].recipe.dataset.max_per_class = Some(5000);
    let scaled = estimate(&cells, &[None], &[0]);
    let want = 12.0 * small.plain_seconds * 12_406.0 / 1236.0;
    assert!((scaled[0].seconds.as_ref().unwrap() - want).abs() < 1e-6, "{scaled:?}");
    // CIFAR with ResNet-32: nothing measured on any backend.
    let paper = load_suite(&dir.join("cifar-lt-paper.ron"), None).unwrap();
    let (plans, _) = plan_forks(&paper.cells);
    let all: Vec<usize> = (0..paper.cells.len()).collect();
    for e in estimate(&paper.cells, &plans, &all) {
        let why = e.seconds.unwrap_err();
        assert!(why.contains("not measured") && why.contains("3x32x32"), "{why}");
    }
}
