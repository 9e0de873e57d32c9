//! `m2m suite` killed in the middle of a cell: finished cells are kept as they are, and
//! running the same command again resumes the killed cell from its checkpoint.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m2m_burn_plugin::run_dir::EpochRecord;
use m2m_tests::{epochs_done, records, tiny_suite_base, write_idx_dataset};

#[test]
fn a_suite_killed_mid_cell_resumes_and_keeps_finished_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    std::fs::write(tmp.path().join("base.ron"), tiny_suite_base(&data, 8)).unwrap();
    let out = tmp.path().join("out");
    let suite = tmp.path().join("suite.ron");
    std::fs::write(
        &suite,
        format!(
            r#"(name: "k", base: "base.ron", output_dir: "{}", methods: [(name: "ERM")], seeds: [0, 1])"#,
            out.display()
        ),
    )
    .unwrap();
    let first = out.join("cells/ERM.Mnist.r4.d3.s0");
    let second = out.join("cells/ERM.Mnist.r4.d3.s1");

    let mut child = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .arg("suite")
        .arg(&suite)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the second cell has finished two of its eight epochs.
    let started = Instant::now();
    while epochs_done(&second) < 2 {
        assert!(child.try_wait().unwrap().is_none(), "the suite finished before it could be killed");
        assert!(started.elapsed() < Duration::from_secs(600), "the suite did not reach the second cell");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!second.join("final.json").exists(), "killed before the cell finished");
    let kept = std::fs::read(first.join("final.json")).expect("the first cell finished before the kill");
    let before: Vec<EpochRecord> = records(&second);

    let rerun = Command::new(env!("CARGO_BIN_EXE_m2m")).arg("suite").arg(&suite).output().unwrap();
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert!(rerun.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&rerun.stderr));
    assert!(
        stdout.contains(
            "1 cells trained now (0 of them forked from another cell's first epochs), 1 already finished, 0 failed"
        ),
        "{stdout}"
    );
    assert_eq!(std::fs::read(first.join("final.json")).unwrap(), kept, "a finished cell was touched");
    let after = records(&second);
    assert_eq!(after.len(), 8);
    // The epochs finished before the kill were resumed, not retrained (burn writes its
    // checkpoints asynchronously, so the last one may be retrained).
    assert_eq!(after[0], before[0]);
    assert!(out.join("report.md").is_file() && out.join("report.csv").is_file());
}
