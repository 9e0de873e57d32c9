//! A suite that searches M2m's settings with successive halving (`search:` on a method):
//! the dry run lists trials, rungs and cost; the search trains fewer trial epochs than the
//! full grid; killed in the middle and run again, it retraces the same rungs and chooses
//! what an uninterrupted run chooses; the report shows the choice, every trial's scores,
//! the test metrics of the chosen trial and the cost; TensorBoard holds every trial.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m2m_burn_plugin::run_dir::RunDir;
use m2m_burn_plugin::suite::{collect, read_record, Metric, SearchRecord};
use m2m_tests::{epochs_done, read_tensorboard, run_ok, tiny_suite_base, write_idx_dataset};

const GROUP: &str = "M2m.Mnist.r4.d3.s0";

fn m2m() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m2m"));
    c.env_remove("RUST_LOG");
    c
}

/// ERM, DRS and M2m over 6 epochs, M2m from epoch 2 with its step size and gamma searched
/// (4 trials; rungs end at epochs 3, 4 and 6); `more` is added to the search (RON fields).
fn write_suite(dir: &Path, more: &str) -> PathBuf {
    let data = dir.join("data");
    write_idx_dataset(&data, 40, 20, true);
    std::fs::write(dir.join("base.ron"), tiny_suite_base(&data, 6)).unwrap();
    let path = dir.join("suite.ron");
    std::fs::write(
        &path,
        format!(
            r#"(name: "s", base: "base.ron", output_dir: "out", baseline: "DRS", seeds: [0],
    methods: [
        (name: "ERM"),
        (name: "DRS", recipe: (sampler: (kind: ClassBalanced, from_epoch: 2))),
        (name: "M2m", recipe: (m2m: (g: TrainErm(seed: 5), beta: 0.5, steps: 2, from_epoch: 2)),
         search: (axes: [(field: "m2m.step_size", values: ["0.1", "2.0"]),
                         (field: "m2m.gamma", values: ["0.9", "0.000001"])],
                  halving: (first_rung: 1, eta: 2){more})),
    ])"#
        ),
    )
    .unwrap();
    path
}

fn record(out: &Path) -> SearchRecord {
    read_record(&out.join(format!("search/{GROUP}.json"))).unwrap().expect("a search record")
}

/// Runs the suite into `out`, killing it once the search has finished its first rung,
/// then runs it again to the end.
fn run_killed_and_resumed(suite: &Path, out: &Path) -> String {
    let mut child = m2m()
        .arg("suite")
        .arg(suite)
        .arg("--output-dir")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let path = out.join(format!("search/{GROUP}.json"));
    // Killed while the first trial that went on trains its second rung.
    while !(path.is_file() && epochs_done(&out.join(format!("cells/M2m-t{}.Mnist.r4.d3.s0", promoted(out)))) > 3) {
        assert!(child.try_wait().unwrap().is_none(), "the suite finished before it could be killed");
        assert!(started.elapsed() < Duration::from_secs(600), "the search did not reach its second rung");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = record(out);
    assert!(partial.chosen.is_none() && partial.rungs.len() < 3, "killed before the search ended: {partial:?}");
    run_ok(m2m().arg("suite").arg(suite).arg("--output-dir").arg(out))
}

/// The first trial promoted from the first rung, once the record says (0 before).
fn promoted(out: &Path) -> usize {
    read_record(&out.join(format!("search/{GROUP}.json")))
        .ok()
        .flatten()
        .and_then(|r| r.rungs.first().and_then(|g| g.promoted.first().copied()))
        .unwrap_or(0)
}

#[test]
fn a_search_halves_its_trials_on_validation_and_resumes_to_the_same_choice() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), "");

    let plan = run_ok(m2m().arg("suite").arg(&suite).arg("--dry-run"));
    assert!(
        plan.contains(&format!(
            "search {GROUP}: 4 trials sharing 2 epochs; rungs end at epochs [3, 4, 6]; 8 trial epochs after the \
             shared ones with successive halving, against 16 for every trial to the end"
        )),
        "{plan}"
    );
    assert!(plan.contains("M2m-t3.Mnist.r4.d3.s0  m2m.step_size=2.0, m2m.gamma=0.000001"), "{plan}");

    let whole = tmp.path().join("whole");
    run_ok(m2m().arg("suite").arg(&suite).arg("--output-dir").arg(&whole));
    let r = record(&whole);
    assert_eq!(r.rung_ends, [3, 4, 6]);
    let trained: Vec<usize> = r.rungs.iter().map(|g| g.trained.len()).collect();
    assert_eq!(trained, [4, 2, 1], "each rung keeps the better half: {r:?}");
    assert_eq!((r.epochs_trained, r.epochs_full_grid), (4 + 2 + 2, 16));
    for (i, rung) in r.rungs.iter().enumerate() {
        // The best scores go on, ties to the lower trial number.
        let mut ranked: Vec<(usize, f64)> =
            rung.trained.iter().copied().zip(rung.scores.iter().map(|s| s.unwrap())).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut best: Vec<usize> = ranked.iter().take(rung.trained.len().div_ceil(2)).map(|x| x.0).collect();
        best.sort_unstable();
        assert_eq!(rung.promoted, if i == 2 { vec![ranked[0].0] } else { best }, "{r:?}");
        if let Some(next) = r.rungs.get(i + 1) {
            assert_eq!(rung.promoted, next.trained, "the trials promoted from a rung train the next");
        }
    }
    let chosen = r.chosen.expect("a trial was chosen");
    assert_eq!(r.rungs[2].promoted, [chosen]);
    // Dropped trials stopped at their rung; the chosen one finished.
    let cells = whole.join("cells");
    let run = |k: usize| RunDir::new(cells.join(format!("M2m-t{k}.Mnist.r4.d3.s0")));
    for k in 0..4 {
        let last_rung = r.rungs.iter().rposition(|g| g.trained.contains(&k)).unwrap();
        assert_eq!(epochs_done(&run(k).root), r.rung_ends[last_rung], "trial {k}");
        assert_eq!(run(k).is_finished(), k == chosen, "trial {k}");
    }

    // Killed after the first rung and run again: the same rungs, scores and choice.
    let resumed = tmp.path().join("resumed");
    let text = run_killed_and_resumed(&suite, &resumed);
    assert_eq!(record(&resumed), r, "{text}");

    // The report: the chosen trial's test metrics in the M2m row, the search's table.
    let report = collect(std::slice::from_ref(&whole)).unwrap();
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let m2m_row = report.summary("M2m", "Mnist", Some(4.0)).unwrap();
    let fin = run(chosen).read_final().unwrap().unwrap();
    let bacc = m2m_row.stat(Metric::BalancedAccuracy).unwrap();
    assert!((bacc.mean - 100.0 * fin.best_val.test.balanced_accuracy).abs() < 1e-9, "{bacc:?}");
    let md = std::fs::read_to_string(whole.join("report.md")).unwrap();
    assert!(md.contains("| M2m (chosen on validation)"), "{md}");
    assert!(md.contains(&format!("### {GROUP}")) && md.contains(&format!("Chosen on validation: `M2m-t{chosen}.")));
    assert!(md.contains("Trial epochs after the 2 shared ones: 8 with successive halving against 16"), "{md}");
    assert!(md.contains(&format!("![Validation curves of the trials of search {GROUP}](plots/search-{GROUP}.svg)")));
    let svg = std::fs::read_to_string(whole.join(format!("plots/search-{GROUP}.svg"))).unwrap();
    assert!(svg.contains("t3: m2m.step_size=2.0, m2m.gamma=0.000001"), "a legend line per trial");

    // TensorBoard: a run per trial, each with its setting among the hparams.
    let Some(read) = read_tensorboard(&cells) else { return };
    let runs = read["runs"].as_object().unwrap();
    for k in 0..4 {
        let hp = &runs[&format!("M2m-t{k}.Mnist.r4.d3.s0/tensorboard")]["hparams"]["session_start_info"]["hparams"];
        let step: f64 = ["0.1", "0.1", "2.0", "2.0"][k].parse().unwrap();
        assert_eq!(hp["m2m.step_size"], step, "trial {k}: {hp}");
    }
    let experiment = &runs["."]["hparams"]["experiment"]["hparam_infos"];
    let fields: Vec<&str> = experiment.as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(fields.contains(&"m2m.step_size") && fields.contains(&"m2m.gamma"), "{fields:?}");
}

#[test]
fn a_probe_drops_the_settings_whose_translations_g_rejects_before_any_training() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path(), ", prune: (min_acceptance: 0.01, batches: 4)");
    let plan = run_ok(m2m().arg("suite").arg(&suite).arg("--dry-run"));
    assert!(plan.contains("probed on 4 training batches; trials accepting under 1% of their translations"), "{plan}");
    let out = tmp.path().join("out");
    run_ok(m2m().arg("suite").arg(&suite).arg("--output-dir").arg(&out));
    let r = record(&out);
    // gamma 0.9 is out of reach of this g (the run above accepted none); 1e-6 is not.
    assert_eq!(r.pruned, [0, 2], "{r:?}");
    assert_eq!(r.probed.len(), 4);
    assert!(r.probed.iter().all(|&(_, n)| n > 0) && r.probed[1].0 > 0 && r.probed[3].0 > 0, "{r:?}");
    assert_eq!(r.rungs[0].trained, [1, 3]);
    assert_eq!((r.epochs_trained, r.epochs_full_grid), (2 + 1 + 2, 16));
    for k in [0, 2] {
        assert!(!out.join(format!("cells/M2m-t{k}.Mnist.r4.d3.s0")).exists(), "pruned trial {k} never trained");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let line = md.lines().find(|l| l.starts_with("Pruned before any training")).expect("the probe's line");
    assert!(line.starts_with("Pruned before any training: 2 of 4 settings, whose M2m accepted under 1% of its translations on 4 class-balanced training batches"), "{line}");
    assert!(line.contains("t0 (0/") && line.contains("Kept: t1 ("), "{line}");
}

/// Accepted and attempted translations of a trial's epoch `epoch` (0-based).
fn accepted_in(run: &Path, epoch: usize) -> (u64, u64) {
    let recs = m2m_tests::records(run);
    let s = recs.iter().find(|r| r.epoch == epoch).and_then(|r| r.m2m.clone()).expect("an M2m epoch");
    (s.total_accepted(), s.total_attempts())
}

/// docs/suites.md's worked example, `recipes/suites/quickstart-search.ron`, on the
/// quickstart data (Fashion-MNIST, which the test command installs): six M2m settings
/// halved on validation next to ERM and DRS. Prints the report's search section.
#[test]
fn the_worked_example_searches_m2m_on_the_quickstart_data() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes/suites/quickstart-search.ron");
    let out = tmp.path().join("out");
    run_ok(m2m().arg("suite").arg(&suite).arg("--output-dir").arg(&out));
    let group = "M2m.FashionMnist.r100.d0.s0";
    let r = read_record(&out.join(format!("search/{group}.json"))).unwrap().unwrap();
    assert_eq!((r.shared, r.rung_ends.clone()), (8, vec![9, 10, 12]));
    assert_eq!((r.epochs_trained, r.epochs_full_grid), (13, 24));
    let chosen = r.chosen.expect("a choice");
    assert!(RunDir::new(out.join(format!("cells/M2m-t{chosen}.FashionMnist.r100.d0.s0"))).is_finished());
    // At the paper's step 0.1 and gamma 0.9 almost no translation passes (M2m is DRS
    // there); at step 0.5 more do.
    let trial = |k: usize| out.join(format!("cells/M2m-t{k}.FashionMnist.r100.d0.s0"));
    let (small, large) = (accepted_in(&trial(0), 8), accepted_in(&trial(2), 8));
    assert!(small.0 * large.1 < large.0 * small.1, "step 0.1: {small:?}, step 0.5: {large:?}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    let section = md.split("\n## Searches").nth(1).expect("a search section").split("\n## ").next().unwrap();
    let table = md.split("\n## Balanced accuracy").nth(1).unwrap().split("\n## ").next().unwrap();
    println!("## Balanced accuracy{table}\n## Searches{section}");
    assert!(table.contains("| M2m (chosen on validation)"), "{table}");
}
