//! `m2m` on burn's wgpu backend end to end (Mesa's lavapipe in CI): a tiny M2m recipe
//! trains with translations attempted and recorded and the same sampling and M2m draws as
//! the CPU run of the same recipe; a run killed on wgpu resumes on wgpu, and burn-train's
//! checkpoints written on one backend resume on the other; a suite cell trains on wgpu.
//! Skipped (saying so) where no wgpu adapter runs, unless `M2M_REQUIRE_GPU` names `wgpu`;
//! `M2M_TEST_WGPU` picks the adapter as `--backend` does.
#![cfg(feature = "wgpu")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m2m_burn_plugin::backend::{probe_wgpu, BackendChoice};

use m2m_burn_plugin::run_dir::EpochRecord;
use m2m_tests::{records, run_ok, tiny_m2m_recipe, write_idx_dataset};

/// The `--backend` value of the tests' wgpu adapter, or `None` (after saying why) when
/// it cannot run here.
fn wgpu_backend() -> Option<String> {
    let text = std::env::var("M2M_TEST_WGPU").unwrap_or_else(|_| "wgpu".into());
    let Ok(BackendChoice::Wgpu { adapter }) = text.parse() else { panic!("M2M_TEST_WGPU={text}: not a wgpu adapter") };
    match probe_wgpu(adapter) {
        Ok(()) => Some(text),
        Err(e) => {
            let required = std::env::var("M2M_REQUIRE_GPU").unwrap_or_default();
            assert!(!required.split(',').any(|n| n.trim() == "wgpu"), "wgpu is required but cannot run: {e:#}");
            eprintln!("skipped: wgpu cannot run here: {e:#}");
            None
        }
    }
}

fn m2m(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m2m"));
    c.args(args).env_remove("RUST_LOG");
    c
}

/// Starts `m2m train` and kills it once its first epoch is recorded.
fn train_until_first_epoch(recipe: &Path, name: &str, backend: &str, run: &Path) {
    let mut child =
        m2m(&["train", recipe.to_str().unwrap(), "--set", &format!("name=\"{name}\""), "--backend", backend])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let started = Instant::now();
    while std::fs::read_to_string(run.join("state.json")).map_or(true, |s| !s.contains("\"completed_epochs\": 1")) {
        assert!(child.try_wait().unwrap().is_none(), "{name} finished before it could be killed");
        assert!(started.elapsed() < Duration::from_secs(900), "{name}: no epoch after 15 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Epoch, LR, sampler and M2m's (slots, attempts, accepted) of one epoch.
type HostDecisions = (usize, f64, String, Option<(u64, Vec<u64>, Vec<u64>)>);

/// Records without what legitimately differs between backends and runs (wall time,
/// floating-point results), keeping what the host decides: sampler, LR, M2m's slots,
/// attempts and acceptances.
fn host_decisions(r: &[EpochRecord]) -> Vec<HostDecisions> {
    r.iter()
        .map(|e| {
            let m2m = e.m2m.as_ref().map(|s| (s.slots, s.attempts.clone(), s.accepted.clone()));
            (e.epoch, e.lr, format!("{:?}", e.sampler), m2m)
        })
        .collect()
}

#[test]
fn an_m2m_recipe_trains_on_wgpu_like_on_the_cpu_and_resumes_across_backends() {
    let Some(backend) = wgpu_backend() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tiny_m2m_recipe(tmp.path());
    let runs = tmp.path().join("runs");
    let path = recipe.to_str().unwrap();

    let started = Instant::now();
    let text = run_ok(&mut m2m(&["train", path, "--backend", &backend]));
    eprintln!("m2m train --backend {backend}: {:.1} s", started.elapsed().as_secs_f64());
    let on_gpu = records(&runs.join("m2m-tiny"));
    assert_eq!(on_gpu.len(), 3, "{text}");
    for e in &on_gpu[1..] {
        let s = e.m2m.as_ref().expect("M2m epochs record their translations");
        assert!(s.total_attempts() > 0 && s.total_accepted() > 0, "epoch {}: {s:?}", e.epoch);
    }
    assert!(runs.join("m2m-tiny/translations.png").is_file(), "the gallery of accepted translations");

    // The CPU run of the same recipe: the same batches, M2m slots and draws (all host-side),
    // and losses and accuracies close to it.
    run_ok(&mut m2m(&["train", path, "--set", "name=\"m2m-tiny-cpu\"", "--backend", "cpu"]));
    let on_cpu = records(&runs.join("m2m-tiny-cpu"));
    assert_eq!(host_decisions(&on_gpu), host_decisions(&on_cpu));
    let loss = |r: &[EpochRecord]| r[0].train_loss;
    assert!(
        (loss(&on_gpu) - loss(&on_cpu)).abs() <= 1e-3 * loss(&on_cpu),
        "epoch 0 train loss {} vs {}",
        loss(&on_gpu),
        loss(&on_cpu)
    );
    for (a, b) in on_gpu.iter().zip(&on_cpu) {
        let gap = (a.test.balanced_accuracy - b.test.balanced_accuracy).abs();
        assert!(
            gap <= 0.05,
            "epoch {}: test bACC {} on wgpu vs {} on the CPU",
            a.epoch,
            a.test.balanced_accuracy,
            b.test.balanced_accuracy
        );
    }

    // Killed on wgpu after its first epoch: resumed on wgpu; and the checkpoints of a run
    // started on one backend resume on the other.
    for (name, first, then) in [
        ("kill-wgpu", backend.as_str(), backend.as_str()),
        ("wgpu-then-cpu", backend.as_str(), "cpu"),
        ("cpu-then-wgpu", "cpu", backend.as_str()),
    ] {
        let run = runs.join(name);
        train_until_first_epoch(&recipe, name, first, &run);
        let before = records(&run);
        assert!(!before.is_empty() && !run.join("final.json").exists(), "{name}");
        run_ok(&mut m2m(&["resume", run.to_str().unwrap(), "--backend", then]));
        let after = records(&run);
        assert_eq!(after.len(), 3, "{name}");
        assert_eq!(after[0].train_loss, before[0].train_loss, "{name}: the first epoch is kept as it was");
        assert_eq!(host_decisions(&after), host_decisions(&on_cpu), "{name}");
    }
}

#[test]
fn a_suite_cell_trains_on_wgpu() {
    let Some(backend) = wgpu_backend() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 20, 10, false);
    std::fs::write(tmp.path().join("base.ron"), m2m_tests::tiny_suite_base(&data, 2)).unwrap();
    let suite = tmp.path().join("s.ron");
    std::fs::write(
        &suite,
        format!(
            r#"(name: "gpu", base: "base.ron", output_dir: "{}", methods: [(name: "ERM")], seeds: [0])"#,
            tmp.path().join("out").display()
        ),
    )
    .unwrap();
    let text = run_ok(&mut m2m(&["suite", suite.to_str().unwrap(), "--backend", &backend]));
    assert!(text.contains("1 cells trained now"), "{text}");
    assert!(tmp.path().join("out/report.csv").is_file());
}
