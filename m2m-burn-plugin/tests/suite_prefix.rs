//! Suites train each shared prefix once: DRS, DRW and M2m cells start as exact forks of
//! the ERM cell's first epochs. Through the `m2m` binary, as users run suites: the forked
//! cells equal from-scratch runs of their recipes bit for bit; a suite killed while its
//! prefix trains resumes to the same results; two shards started together on one folder
//! train the shared prefix once and agree with a single process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use m2m_burn_plugin::run_dir::{EpochRecord, RunDir};

const CELLS: [&str; 4] = ["ERM.Mnist.r4.d3.s0", "DRS.Mnist.r4.d3.s0", "DRW.Mnist.r4.d3.s0", "M2m.Mnist.r4.d3.s0"];

fn write_suite(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    m2m_tests::write_idx_dataset(&data, 40, 20, false);
    std::fs::write(dir.join("base.ron"), m2m_tests::tiny_suite_base(&data, 5)).unwrap();
    let suite = dir.join("suite.ron");
    std::fs::write(
        &suite,
        r#"(name: "prefix", base: "base.ron", output_dir: "unused", baseline: "ERM", seeds: [0],
    methods: [
        (name: "ERM"),
        (name: "DRS", recipe: (sampler: (kind: ClassBalanced, from_epoch: 3))),
        (name: "DRW", recipe: (loss: (weighting: (kind: EffectiveNumber(beta: 0.999), from_epoch: 3), weighted_mean: BatchSize))),
        (name: "M2m", recipe: (m2m: (g: Method("ERM"), gamma: 0.5, steps: 2, from_epoch: 3))),
    ])"#,
    )
    .unwrap();
    suite
}

fn spawn(suite: &Path, out: &Path, shard: Option<&str>, log: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m2m"));
    cmd.arg("suite").arg(suite).arg("--output-dir").arg(out);
    if let Some(s) = shard {
        cmd.args(["--shard", s]);
    }
    let file = std::fs::File::create(log).unwrap();
    cmd.stdout(Stdio::from(file.try_clone().unwrap())).stderr(Stdio::from(file)).spawn().expect("running m2m")
}

fn finish(mut child: Child, log: &Path) -> String {
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(status.success(), "m2m suite failed:\n{text}");
    text
}

fn records(out: &Path, cell: &str) -> Vec<EpochRecord> {
    m2m_tests::records(&out.join("cells").join(cell)).into_iter().map(|r| EpochRecord { seconds: 0.0, ..r }).collect()
}

fn assert_same_cells(a: &Path, b: &Path) {
    for cell in CELLS {
        assert_eq!(records(a, cell), records(b, cell), "{cell}: {} vs {}", a.display(), b.display());
        for model in ["model-last.mpk", "model-best-val.mpk"] {
            // The files hold burn's random parameter ids; the weights are compared in
            // tests/tests/fork.rs. Here: both exist.
            assert!(
                a.join("cells").join(cell).join(model).is_file() && b.join("cells").join(cell).join(model).is_file()
            );
        }
    }
}

/// Trainings from epoch 0 in a log (ERM, and any cell not forked).
fn from_scratch(log: &str) -> usize {
    log.lines().filter(|l| l.contains(" epoch 1/5 lr ")).count()
}

#[test]
fn suites_train_the_shared_prefix_once_exactly_also_when_killed_or_sharded() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = write_suite(tmp.path());

    // One process: only ERM trains from epoch 0; DRS, DRW and M2m fork from it after
    // epoch 3, and M2m's g is the ERM cell's best model (no separate ERM for g).
    let reference = tmp.path().join("reference");
    let log =
        finish(spawn(&suite, &reference, None, &tmp.path().join("reference.log")), &tmp.path().join("reference.log"));
    assert_eq!(from_scratch(&log), 1, "ERM only:\n{log}");
    assert!(log.contains("4 cells trained now (3 of them forked"), "{log}");
    for cell in &CELLS[1..] {
        let fork = RunDir::new(reference.join("cells").join(cell)).read_fork().unwrap().expect("forked");
        assert_eq!((fork.source.file_name().unwrap().to_str().unwrap(), fork.epoch), (CELLS[0], 3));
    }
    let report = std::fs::read_to_string(reference.join("report.md")).unwrap();
    assert!(
        report.contains("3 cells started as exact forks")
            && report.contains("`DRS.Mnist.r4.d3.s0` from `ERM.Mnist.r4.d3.s0` after epoch 3"),
        "{report}"
    );

    // Each forked cell equals its recipe run from scratch, alone.
    for cell in &CELLS[1..] {
        let alone = tmp.path().join("alone");
        let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
            .args(["train", "--no-dashboard", "--set"])
            .arg(format!("output_dir=\"{}\"", alone.join("cells").display()))
            .arg(reference.join("cells").join(cell).join("recipe.resolved.ron"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(RunDir::new(alone.join("cells").join(cell)).read_fork().unwrap().is_none());
        assert_eq!(records(&alone, cell), records(&reference, cell), "{cell}: fork vs from scratch");
    }

    // Killed while the prefix (ERM) trains, then run again: the same results.
    let killed = tmp.path().join("killed");
    let log_path = tmp.path().join("killed.log");
    let mut child = spawn(&suite, &killed, None, &log_path);
    let state = killed.join("cells").join(CELLS[0]).join("state.json");
    let started = Instant::now();
    while !std::fs::read_to_string(&state).is_ok_and(|s| s.contains("\"completed_epochs\": 1")) {
        assert!(
            started.elapsed() < Duration::from_secs(300) && child.try_wait().unwrap().is_none(),
            "ERM never finished epoch 1"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!killed.join("cells").join(CELLS[1]).exists(), "killed before any fork");
    let log = finish(spawn(&suite, &killed, None, &log_path), &log_path);
    assert!(log.contains("taking over") || !killed.join("cells").join(format!("{}.lock", CELLS[0])).exists(), "{log}");
    assert_same_cells(&killed, &reference);
    let m2m_recipe =
        std::fs::read_to_string(reference.join("cells").join(CELLS[3]).join("recipe.resolved.ron")).unwrap();
    assert!(
        m2m_recipe.contains(&format!("Checkpoint(\"{}\")", reference.join("cells").join(CELLS[0]).display())),
        "{m2m_recipe}"
    );

    // Two shards started together on one folder: the cells form one fork family (DRS, DRW
    // and M2m fork from ERM, which is also M2m's g), so shard 0 gets all of it and shard 1
    // nothing; ERM is trained once, by shard 0.
    let shared = tmp.path().join("shared");
    let logs = [tmp.path().join("shard0.log"), tmp.path().join("shard1.log")];
    let children = [spawn(&suite, &shared, Some("0/2"), &logs[0]), spawn(&suite, &shared, Some("1/2"), &logs[1])];
    let texts: Vec<String> = children.into_iter().zip(&logs).map(|(c, l)| finish(c, l)).collect();
    assert_eq!(texts.iter().map(|t| from_scratch(t)).sum::<usize>(), 1, "ERM trained once:\n{}", texts.join("\n"));
    assert_eq!(from_scratch(&texts[0]), 1, "by shard 0:\n{}", texts[0]);
    assert!(texts[1].contains("0 of 4 cells in shard 1/2"), "{}", texts[1]);
    assert_same_cells(&shared, &reference);
    for cell in &CELLS[1..] {
        assert!(RunDir::new(shared.join("cells").join(cell)).read_fork().unwrap().is_some(), "{cell} forked");
    }
}
