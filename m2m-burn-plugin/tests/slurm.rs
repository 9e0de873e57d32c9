//! `m2m suite --slurm` on a real Slurm: scripts/test.sh starts a single-node cluster
//! (scripts/slurm-local.sh: Debian's slurm-wlm and munge, daemons started by hand) and sets
//! `SLURM_CONF` and `M2M_REQUIRE_SLURM=1`. Without a cluster the test says so and checks
//! nothing, unless `M2M_REQUIRE_SLURM` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use m2m_tests::{epochs_done, tiny_suite_base, write_idx_dataset};

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Whether a Slurm controller answers here.
fn slurm_ready() -> bool {
    let answers = Command::new("sinfo").arg("-h").output().is_ok_and(|o| o.status.success());
    if !answers {
        assert!(
            std::env::var_os("M2M_REQUIRE_SLURM").is_none(),
            "M2M_REQUIRE_SLURM is set but `sinfo` does not answer (SLURM_CONF={:?})",
            std::env::var_os("SLURM_CONF")
        );
        eprintln!("skipped: no Slurm cluster answers here (scripts/slurm-local.sh start DIR starts one)");
    }
    answers
}

fn m2m() -> Command {
    Command::new(env!("CARGO_BIN_EXE_m2m"))
}

/// The job ids in `m2m suite --slurm`'s "submitted array job A (...) and merge job M".
fn submitted(out: &Output) -> (String, String) {
    let said = text(out);
    assert!(out.status.success(), "{said}");
    let line = said.lines().find(|l| l.starts_with("submitted array job ")).unwrap_or_else(|| panic!("{said}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[3].to_string(), words.last().unwrap().to_string())
}

/// Waits until Slurm no longer lists any of `jobs`.
fn wait_gone(jobs: &[&str]) {
    let started = Instant::now();
    loop {
        let q = Command::new("squeue").args(["-h", "-o", "%i %T", "-j", &jobs.join(",")]).output().unwrap();
        let listed = String::from_utf8_lossy(&q.stdout).to_string();
        if listed.trim().is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(900), "jobs still queued after 15 minutes:\n{listed}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn log_of(logs: &Path, needle: &str) -> Option<(PathBuf, String)> {
    std::fs::read_dir(logs).ok()?.flatten().map(|e| e.path()).find_map(|p| {
        let name = p.file_name()?.to_string_lossy().into_owned();
        name.contains(needle).then(|| (p.clone(), std::fs::read_to_string(&p).unwrap_or_default()))
    })
}

#[test]
fn a_suite_submitted_to_slurm_survives_scancel_and_merges_like_an_unsharded_run() {
    if !slurm_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, false);
    std::fs::write(tmp.path().join("base.ron"), tiny_suite_base(&data, 5)).unwrap();
    let suite = tmp.path().join("suite.ron");
    std::fs::write(
        &suite,
        format!(
            r#"(name: "slurm", base: "base.ron", output_dir: "{}", seeds: [0, 1],
                methods: [(name: "ERM"), (name: "DRS", recipe: (sampler: (kind: ClassBalanced, from_epoch: 1)))])"#,
            tmp.path().join("local").display()
        ),
    )
    .unwrap();
    // The reference: the same suite unsharded, here.
    let local = m2m().arg("suite").arg(&suite).output().unwrap();
    assert!(local.status.success(), "{}", text(&local));

    let out = tmp.path().join("on-slurm");
    let submit = || m2m().arg("suite").arg(&suite).arg("--slurm").arg("--output-dir").arg(&out).output().unwrap();
    let first = submit();
    // Two seeds: two fork families (ERM and the DRS forking from it), two array tasks.
    assert!(text(&first).contains("2 of 2 shards have unfinished cells (array ids 0-1)"), "{}", text(&first));
    let (array, merge) = submitted(&first);
    // Cancel shard 1 once its ERM cell has trained an epoch: it stops at a safe point, and
    // the merge job, whose dependency can no longer be met, is cancelled by Slurm.
    let victim = out.join("cells/ERM.Mnist.r4.d3.s1");
    let started = Instant::now();
    while epochs_done(&victim) < 1 {
        assert!(started.elapsed() < Duration::from_secs(600), "shard 1 trained no epoch in 10 minutes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cancel = Command::new("scancel").arg(format!("{array}_1")).output().unwrap();
    assert!(cancel.status.success(), "{}", text(&cancel));
    wait_gone(&[&array, &merge]);
    let logs = out.join("slurm/logs");
    let (path, cancelled) = log_of(&logs, &format!("{array}_1")).expect("shard 1's log");
    assert!(cancelled.contains("stopped by SIGTERM"), "{}:\n{cancelled}", path.display());
    assert!(log_of(&logs, &format!("-{merge}.out")).is_none(), "the merge job must not run after a failed task");
    let locks: Vec<_> = std::fs::read_dir(out.join("cells"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "lock"))
        .collect();
    assert!(locks.is_empty(), "locks left behind: {locks:?}");

    // Submitting again sends only the unfinished shard; the merge job then writes the
    // report, the same as the unsharded run's.
    let again = submit();
    assert!(text(&again).contains("1 of 2 shards have unfinished cells (array ids 1)"), "{}", text(&again));
    let (array, merge) = submitted(&again);
    wait_gone(&[&array, &merge]);
    let (_, merged) = log_of(&logs, &format!("-{merge}.out")).expect("the merge job's log");
    assert!(merged.contains("report: "), "{merged}");
    let expected = std::fs::read(tmp.path().join("local/report.csv")).unwrap();
    assert_eq!(std::fs::read(out.join("report.csv")).unwrap(), expected, "merged report = unsharded report");

    // Nothing left to do: nothing submitted.
    let done = submit();
    assert!(text(&done).contains("nothing to submit"), "{}", text(&done));
}
