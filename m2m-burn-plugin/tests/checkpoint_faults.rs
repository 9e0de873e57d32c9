//! A full disk and a damaged checkpoint, in the `m2m` CLI and in a burn-train program
//! with `hook::fusion_safe`: one line that names the folder and the cause, no panic text,
//! nothing written lost, and the run resumes once the cause is gone.
//!
//! The full disk is real: a tmpfs, sized to hold one checkpoint and a half, mounted on the
//! checkpoint folder, so the second epoch's checkpoint does not fit; it is then remounted
//! larger ("space freed") and the run resumed. Mounting needs root (the test command runs
//! as root in CI and sets `M2M_REQUIRE_TMPFS`); elsewhere these tests say so and skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::learning_checkpoint::complete_checkpoints;
use m2m_tests::fusion::{train, TrainingLoop};

/// A tmpfs mounted on a folder for as long as it lives.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts `bytes` of tmpfs on `dir` (made if missing); `None`, saying why, where that
    /// is not possible here.
    fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let size = format!("size={}", bytes.div_ceil(4096) * 4096);
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(dir).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                assert!(std::env::var_os("M2M_REQUIRE_TMPFS").is_none(), "M2M_REQUIRE_TMPFS is set: {why}");
                eprintln!("skipped: cannot mount a tmpfs here (root is needed): {why}");
                None
            }
        }
    }

    /// Frees space: the same tmpfs, contents kept, `bytes` large.
    fn grow(&self, bytes: u64) {
        let options = format!("remount,size={}", bytes.div_ceil(4096) * 4096);
        let out = Command::new("mount").args(["-o", &options]).arg(&self.0).output().unwrap();
        assert!(out.status.success(), "remounting {}: {}", self.0.display(), String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The size of the files of checkpoint `epoch` in `dir`.
fn checkpoint_bytes(dir: &Path, epoch: usize) -> u64 {
    let suffix = format!("-{epoch}.");
    let entries = std::fs::read_dir(dir).unwrap().flatten();
    entries.filter(|e| e.file_name().to_string_lossy().contains(&suffix)).map(|e| e.metadata().unwrap().len()).sum()
}

/// What a failing run printed: exactly one line about the failure, no panic text.
fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "the run did not fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "panic text:\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{stderr}");
    errors[0].to_string()
}

fn m2m(args: &[&str], recipe_or_run: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_m2m"));
    cmd.args(args).arg(recipe_or_run).arg("--no-dashboard").env("RUST_LOG", "warn");
    cmd.output().unwrap()
}

#[test]
fn the_cli_stops_on_a_full_disk_with_one_line_and_resumes_once_there_is_space() {
    // One checkpoint's size, from a run of one epoch.
    let scratch = tempfile::tempdir().unwrap();
    let recipe = m2m_tests::tiny_m2m_recipe(scratch.path());
    let out = m2m(&["train", "--set", "schedule.epochs=2"], &recipe);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let one = checkpoint_bytes(&scratch.path().join("runs/m2m-tiny/burn/checkpoint"), 1);
    assert!(one > 100_000, "a checkpoint of the small CNN and its optimiser: {one} bytes");

    let tmp = tempfile::tempdir().unwrap();
    let recipe = m2m_tests::tiny_m2m_recipe(tmp.path());
    let run = tmp.path().join("runs/m2m-tiny");
    let checkpoints = run.join("burn/checkpoint");
    let Some(disk) = Tmpfs::mount(&checkpoints, one * 3 / 2) else { return };
    let line = one_error_line(&m2m(&["train"], &recipe));
    let expected = format!(
        "{}: writing burn-train's checkpoint of epoch 1 failed: no space left on device (",
        checkpoints.display()
    );
    assert!(line.contains(&expected), "{line}");
    assert!(line.contains("a checkpoint takes") && line.contains("every epoch up to 0 is kept"), "{line}");
    assert!(line.contains(&format!("free some space, then run `m2m resume {}`", run.display())), "{line}");
    assert_eq!(m2m_tests::epochs_done(&run), 2, "epoch 1's metrics were written before its checkpoint");

    disk.grow(one * 8);
    let out = m2m(&["resume"], &run);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let epochs: Vec<usize> = m2m_tests::records(&run).iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, vec![0, 1, 2], "every epoch recorded once");
}

/// The child process' part: the MLP of `m2m_tests::fusion` through `fusion_safe`, in
/// `$M2M_FAULT_DIR`, for 3 epochs, resuming from `$M2M_FAULT_RESUME` when set. Nothing in
/// a plain test run.
#[test]
fn fault_leg() {
    let Some(dir) = std::env::var_os("M2M_FAULT_DIR") else { return };
    let resume = std::env::var("M2M_FAULT_RESUME").ok().map(|n| n.parse().unwrap());
    let weights = train::<Cpu>(Path::new(&dir), 3, resume, TrainingLoop::FusionSafe, &Default::default());
    std::fs::write(Path::new(&dir).join("weights.json"), serde_json::to_vec(&weights).unwrap()).unwrap();
}

fn leg(dir: &Path, resume: Option<usize>) -> Output {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child.args(["--exact", "fault_leg", "--nocapture", "--test-threads", "1"]).env("M2M_FAULT_DIR", dir);
    if let Some(n) = resume {
        child.env("M2M_FAULT_RESUME", n.to_string());
    }
    child.output().unwrap()
}

fn weights(dir: &Path) -> Vec<Vec<f32>> {
    serde_json::from_slice(&std::fs::read(dir.join("weights.json")).unwrap()).unwrap()
}

#[test]
fn fusion_safe_stops_on_a_full_disk_or_a_damaged_checkpoint_with_one_line() {
    let straight = tempfile::tempdir().unwrap();
    let out = leg(straight.path(), None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // burn-train keeps the last two checkpoints: the third is there.
    let one = checkpoint_bytes(&straight.path().join("checkpoint"), 3);
    assert!(one > 50_000, "a checkpoint of the MLP and its optimiser: {one} bytes");

    let tmp = tempfile::tempdir().unwrap();
    let checkpoints = tmp.path().join("checkpoint");
    let Some(disk) = Tmpfs::mount(&checkpoints, one * 3 / 2) else { return };
    let out = leg(tmp.path(), None);
    let line = one_error_line(&out);
    assert_eq!(out.status.code(), Some(101), "{line}");
    let expected = format!("error: {}: the checkpoint after epoch 2: no space left on device (", checkpoints.display());
    assert!(line.starts_with(&expected), "{line}");
    assert!(line.contains("the newest complete checkpoint is the one after epoch 1"), "{line}");
    assert!(complete_checkpoints(&checkpoints).contains(&1), "the first checkpoint is whole");

    // Space freed: resuming after epoch 1 ends where the run without a fault ended.
    disk.grow(one * 8);
    let out = leg(tmp.path(), Some(1));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(weights(tmp.path()) == weights(straight.path()), "resumed after a full disk: other weights");

    // A truncated checkpoint to resume from is named before burn-train's `expect`.
    let model = std::fs::read_dir(&checkpoints).unwrap().flatten().find(|e| e.file_name() == "model-2.mpk").unwrap();
    let bytes = std::fs::read(model.path()).unwrap();
    std::fs::write(model.path(), &bytes[..bytes.len() / 2]).unwrap();
    let line = one_error_line(&leg(tmp.path(), Some(2)));
    let expected = format!("error: {}: the checkpoint after epoch 2: it cannot be read: ", checkpoints.display());
    assert!(line.starts_with(&expected), "{line}");
    assert!(line.contains("the newest complete checkpoint is the one after epoch 3"), "{line}");
}
