//! What clusters do to suites: SIGTERM (scancel, time limits, preemption) stops a suite
//! at a safe point with exit status 75 and the rerun resumes; locks are leases that any
//! host takes over once their heartbeat is older than the lease; a process whose lock was
//! taken over stops that cell; `--shard auto` reads the job array's index; `m2m report`
//! fails when cells are missing; `--slurm` writes and submits the array and merge job.
//! (A real Slurm runs the array in tests/slurm.rs.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use m2m_burn_plugin::run_dir::RunDir;
use m2m_tests::{epochs_done, records, tiny_suite_base, write_idx_dataset};

/// A suite of ERM cells for `seeds` over the tiny data set, `epochs` epochs each.
fn suite(dir: &Path, epochs: usize, seeds: &str) -> PathBuf {
    let data = dir.join("data");
    write_idx_dataset(&data, 40, 20, false);
    std::fs::write(dir.join("base.ron"), tiny_suite_base(&data, epochs)).unwrap();
    let path = dir.join("suite.ron");
    std::fs::write(
        &path,
        format!(
            r#"(name: "c", base: "base.ron", output_dir: "{}", seeds: [{seeds}], methods: [(name: "ERM")])"#,
            dir.join("out").display()
        ),
    )
    .unwrap();
    path
}

fn m2m() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m2m"));
    c.env_remove("SLURM_ARRAY_TASK_ID").env_remove("JOB_COMPLETION_INDEX").env_remove("M2M_LOCK_LEASE");
    c
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Waits until `run` has finished `n` epochs (while `child` runs).
fn wait_for_epochs(child: &mut Child, run: &Path, n: usize) {
    let started = Instant::now();
    while epochs_done(run) < n {
        assert!(child.try_wait().unwrap().is_none(), "finished before reaching epoch {n} of {}", run.display());
        assert!(started.elapsed() < Duration::from_secs(600), "{}: no epoch {n} after 10 minutes", run.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn locks_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "lock") {
            found.push(path);
        }
    }
    found
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "no exit within {limit:?} of the signal");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_stops_a_suite_at_a_safe_point_and_the_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = suite(tmp.path(), 6, "0, 1");
    let cells = tmp.path().join("out/cells");
    let first = cells.join("ERM.Mnist.r4.d3.s0");
    let log = tmp.path().join("log.txt");
    let mut child = m2m()
        .arg("suite")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_epochs(&mut child, &first, 2);
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(75), "stopped, resumable: {stderr}");
    assert!(stderr.contains("stopped by SIGTERM") && stderr.contains("run the same command again"), "{stderr}");
    assert!(stderr.contains("ERM.Mnist.r4.d3.s0 stopped, 1 cells not run: ERM.Mnist.r4.d3.s1"), "{stderr}");
    assert!(locks_under(&cells).is_empty(), "locks left: {:?}", locks_under(&cells));
    let state = RunDir::new(first.clone()).read_state().unwrap().expect("the stopped cell's state");
    assert!(!state.finished && state.completed_epochs >= 2, "{state:?}");
    let why = state.stopped.expect("the state says why it stopped");
    assert!(why.starts_with("stopped by SIGTERM during epoch "), "{why}");
    assert_eq!(epochs_done(&first), state.completed_epochs, "no record of the abandoned epoch");
    let before = records(&first);

    // The report names what is missing and fails, unless told it may be incomplete.
    let report = m2m().arg("report").arg(tmp.path().join("out")).output().unwrap();
    let said = text(&report);
    assert_eq!(report.status.code(), Some(1), "{said}");
    assert!(said.contains("2 of the suite's 2 cells are missing"), "{said}");
    assert!(said.contains("ERM.Mnist.r4.d3.s1: not started"), "{said}");
    assert!(
        said.contains(&format!("ERM.Mnist.r4.d3.s0: {} of 6 epochs done; stopped by SIGTERM", before.len())),
        "{said}"
    );
    let lenient = m2m().args(["report", "--allow-incomplete"]).arg(tmp.path().join("out")).output().unwrap();
    assert!(lenient.status.success(), "{}", text(&lenient));

    let rerun = m2m().arg("suite").arg(&path).output().unwrap();
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert!(text(&rerun).contains(&format!("{}: {why} last time; resuming", first.display())), "{}", text(&rerun));
    let after = records(&first);
    assert_eq!(after.len(), 6);
    assert_eq!(&after[..before.len()], &before[..], "the epochs before the stop are kept as they were");
    assert!(RunDir::new(first.clone()).read_state().unwrap().unwrap().stopped.is_none());
    let report = m2m().arg("report").arg(tmp.path().join("out")).output().unwrap();
    assert!(report.status.success(), "{}", text(&report));
}

#[test]
fn locks_of_other_hosts_are_taken_over_once_their_lease_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let path = suite(tmp.path(), 2, "0, 1");
    let cells = tmp.path().join("out/cells");
    std::fs::create_dir_all(&cells).unwrap();
    // s0: left by a node that died an hour ago. s1: held by a live process elsewhere, whose
    // heartbeat stops now (it was killed): taken over after the lease.
    let dead = cells.join("ERM.Mnist.r4.d3.s0.lock");
    std::fs::write(&dead, "node-17 4242 00000000000000aa").unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&dead).unwrap().set_modified(hour_ago).unwrap();
    std::fs::write(cells.join("ERM.Mnist.r4.d3.s1.lock"), "node-18 4343 00000000000000bb").unwrap();

    let started = Instant::now();
    let out = m2m().arg("suite").arg(&path).env("M2M_LOCK_LEASE", "15").output().unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("taking over") && said.contains("from process 4242 on node-17 (no heartbeat for 36"),
        "{said}"
    );
    assert!(said.contains("process 4343 on node-18 is training it") && said.contains("comes back to it"), "{said}");
    assert!(said.contains("from process 4343 on node-18 (no heartbeat for 1"), "{said}");
    assert!(started.elapsed() >= Duration::from_secs(15), "s1 waited for its lease to expire");
    for seed in [0, 1] {
        assert!(RunDir::new(cells.join(format!("ERM.Mnist.r4.d3.s{seed}"))).is_finished());
    }
    assert!(locks_under(&cells).is_empty());
}

#[test]
fn a_process_whose_lock_was_taken_over_stops_that_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let path = suite(tmp.path(), 30, "0");
    let cells = tmp.path().join("out/cells");
    let run = cells.join("ERM.Mnist.r4.d3.s0");
    let log = tmp.path().join("log.txt");
    let mut child = m2m()
        .arg("suite")
        .arg(&path)
        .env("M2M_LOCK_LEASE", "8")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_for_epochs(&mut child, &run, 1);
    // What a process on another host writes when it takes the lock over.
    let lock = cells.join("ERM.Mnist.r4.d3.s0.lock");
    let theirs = "node-19 77 00000000000000cc";
    m2m_burn_plugin::fs::write_atomic(&lock, theirs.as_bytes()).unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(1), "the cell failed: {stderr}");
    assert!(stderr.contains("was taken over (it now reads process 77 on node-19)"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), theirs, "the new holder's lock is left alone");
    assert!(epochs_done(&run) < 30, "stopped before finishing");
    assert!(
        RunDir::new(run.clone()).read_state().unwrap().unwrap().stopped.is_none(),
        "nothing written for the new holder"
    );
}

#[test]
fn shard_auto_reads_the_job_arrays_index() {
    let tmp = tempfile::tempdir().unwrap();
    let path = suite(tmp.path(), 2, "0, 1, 2");
    let dry = |envs: &[(&str, &str)]| {
        let mut c = m2m();
        c.args(["suite", "--dry-run", "--shard", "auto"]).arg(&path);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let slurm = dry(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "4"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
    assert!(slurm.status.success(), "{}", text(&slurm));
    assert!(text(&slurm).contains("3 cells; * = in shard 1/3"), "{}", text(&slurm));
    let k8s = dry(&[("JOB_COMPLETION_INDEX", "2"), ("M2M_SHARD_COUNT", "3")]);
    assert!(text(&k8s).contains("* = in shard 2/3"), "{}", text(&k8s));
    let no_count = dry(&[("JOB_COMPLETION_INDEX", "2")]);
    assert!(!no_count.status.success() && text(&no_count).contains("M2M_SHARD_COUNT is not"), "{}", text(&no_count));
    let nothing = dry(&[]);
    assert!(!nothing.status.success() && text(&nothing).contains("neither SLURM_ARRAY_TASK_ID"), "{}", text(&nothing));
}

#[test]
fn slurm_submission_writes_the_array_and_merge_job_and_needs_sbatch() {
    let tmp = tempfile::tempdir().unwrap();
    let path = suite(tmp.path(), 2, "0, 1, 2");
    let out = tmp.path().join("out");
    let dry = m2m()
        .args(["suite", "--slurm", "--dry-run", "--array-parallel", "2"])
        .arg(&path)
        .args(["--", "--partition=gpu", "--gres=gpu:1"])
        .output()
        .unwrap();
    let said = text(&dry);
    assert!(dry.status.success(), "{said}");
    // Three seeds: three ERM cells, three families, three array tasks.
    assert!(said.contains("3 of 3 shards have unfinished cells (array ids 0-2)"), "{said}");
    assert!(said.contains("#SBATCH --array=0-2%2") && said.contains("#SBATCH --signal=B:TERM@180"), "{said}");
    assert!(said.contains("--shard \"${SLURM_ARRAY_TASK_ID}/3\""), "{said}");
    assert!(said.contains(&format!("--output-dir {}", out.display())), "{said}");
    assert!(said.contains("--dependency=afterok:<array job id> --kill-on-invalid-dep=yes --partition=gpu"), "{said}");
    assert!(said.contains(&format!("report {}", out.display())), "{said}");
    let merge = said.lines().find(|l| l.starts_with("sbatch --parsable --dependency")).unwrap();
    assert!(!merge.contains("--gres"), "no GPU for the merge job: {merge}");

    let no_sbatch = m2m().args(["suite", "--slurm"]).arg(&path).env("PATH", "/nonexistent").output().unwrap();
    assert!(!no_sbatch.status.success(), "{}", text(&no_sbatch));
    assert!(text(&no_sbatch).contains("sbatch is not on PATH"), "{}", text(&no_sbatch));
}
