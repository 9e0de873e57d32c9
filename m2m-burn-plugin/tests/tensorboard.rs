//! TensorBoard logs of `m2m` runs, read back by TensorBoard's own reader (the `tensorboard`
//! package's EventAccumulator, through `M2M_TENSORBOARD_PYTHON`; the test command sets it
//! up): scalars, the translations image, the recipe as text and the hparams records of a
//! tiny M2m run that is stopped and resumed (no step twice), a fork's log starting at its
//! fork point, and no log when the recipe says so.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use m2m_tests::{read_tensorboard, run_ok, tiny_m2m_recipe, tiny_suite_base, write_idx_dataset};
use serde_json::Value;

fn m2m() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_m2m"));
    c.env_remove("RUST_LOG");
    c
}

fn steps(run: &Value, tag: &str) -> Vec<i64> {
    let points = run["scalars"][tag].as_array().unwrap_or_else(|| panic!("no scalar {tag}: {:?}", run["tags"]));
    points.iter().map(|p| p[0].as_i64().unwrap()).collect()
}

fn event_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().contains(".tfevents.")).count())
}

#[test]
fn an_m2m_run_logs_scalars_images_text_and_hparams_and_a_resumed_run_no_step_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let recipe = tiny_m2m_recipe(tmp.path());
    let run = tmp.path().join("runs/m2m-tiny");
    // Stopped (SIGTERM) once its first epoch is recorded, then resumed to the end.
    let mut child = m2m().arg("train").arg(&recipe).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while m2m_tests::epochs_done(&run) < 1 {
        assert!(child.try_wait().unwrap().is_none(), "finished before it could be stopped");
        assert!(started.elapsed() < Duration::from_secs(600));
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert_eq!(child.wait().unwrap().code(), Some(75));
    run_ok(m2m().arg("train").arg(&recipe));
    let board = run.join("tensorboard");
    assert_eq!(event_files(&board), 2, "one event file per process that trained the run");
    // provenance.json: the stopped process and the one that resumed, each with its end.
    let sessions = m2m_burn_plugin::run_dir::RunDir::new(run.clone()).read_provenance().unwrap();
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let (first, second) = (&sessions[0], &sessions[1]);
    let (stopped, finished) = (first.ended.as_ref().unwrap(), second.ended.as_ref().unwrap());
    assert_eq!((first.first_epoch, stopped.how.as_str()), (0, "stopped by SIGTERM"), "{first:?}");
    assert_eq!(second.first_epoch, stopped.completed_epochs, "the second process resumed where the first stopped");
    assert_eq!((finished.how.as_str(), finished.completed_epochs), ("finished", 3), "{second:?}");
    assert!(first.started <= stopped.at && stopped.at <= second.started && second.started <= finished.at);
    for s in &sessions {
        assert!(s.m2m.starts_with(env!("CARGO_PKG_VERSION")) && s.burn == "0.21.0", "{s:?}");
        assert!(s.backend.to_lowercase().contains("flex") && s.threads >= 1 && !s.host.is_empty(), "{s:?}");
        assert!(s.command.iter().any(|a| a == "train") && s.command.iter().any(|a| a.ends_with(".ron")), "{s:?}");
    }

    let Some(read) = read_tensorboard(&board) else { return };
    let runs = read["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 1, "both files are one TensorBoard run: {:?}", runs.keys());
    let r = &runs["."];
    assert_eq!(r["file_version"], 2.0, "brain.Event:2");
    let recalls: Vec<String> =
        r["scalars"].as_object().unwrap().keys().filter(|k| k.starts_with("test/recall/")).cloned().collect();
    assert_eq!(recalls.len(), 10, "per-class test recall: {recalls:?}");
    let fixed = ["train/loss", "train/accuracy", "lr", "val/bACC", "test/bACC", "test/GM", "test/minor"];
    for tag in fixed.iter().copied().chain(recalls.iter().map(String::as_str)) {
        assert_eq!(steps(r, tag), vec![0, 1, 2], "{tag}: every epoch once");
    }
    let records = m2m_tests::records(&run);
    let loss: Vec<f64> =
        r["scalars"]["train/loss"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
    for (e, l) in records.iter().zip(&loss) {
        assert_eq!(*l, e.train_loss as f32 as f64, "the logged loss is the run's, as f32");
    }
    assert_eq!(steps(r, "m2m/attempts"), vec![1, 2], "M2m from epoch 1");
    assert_eq!(steps(r, "m2m/g_confidence"), vec![1, 2]);
    let accepted: Vec<f64> =
        r["scalars"]["m2m/accepted"].as_array().unwrap().iter().map(|p| p[1].as_f64().unwrap()).collect();
    assert_eq!(
        accepted,
        records[1..].iter().map(|e| e.m2m.as_ref().unwrap().total_accepted() as f64).collect::<Vec<_>>()
    );
    assert!(r["scalars"].as_object().unwrap().keys().any(|k| k.starts_with("m2m/acceptance/")), "per target class");
    // The translations gallery of each M2m epoch, as drawn into the run directory.
    let images = r["images"]["m2m/translations"].as_array().expect("the translations image");
    assert_eq!(images.iter().map(|i| i["step"].as_i64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    let png = image::open(run.join("translations.png")).unwrap();
    assert_eq!(images[1]["decoded"]["size"], serde_json::json!([png.width(), png.height()]));
    assert_eq!(images[1]["decoded"]["format"], "PNG");
    // The resolved recipe as text, at the first step of each process.
    let text = r["text"]["recipe"].as_array().expect("the recipe as text");
    assert!(text[0][1].as_str().unwrap().contains("name: \"m2m-tiny\""), "{text:?}");
    // Each process's provenance as text, at its first epoch.
    let provenance = r["text"]["provenance"].as_array().expect("the provenance as text");
    assert_eq!(provenance.len(), 2, "{provenance:?}");
    assert_eq!(provenance[1][0].as_i64(), Some(sessions[1].first_epoch as i64), "{provenance:?}");
    assert!(provenance[0][1].as_str().unwrap().contains(&sessions[0].started), "{provenance:?}");
    // hparams: the experiment (recipe fields and the metrics to compare), the session's
    // values and its end.
    let hp = &r["hparams"];
    let infos: Vec<&str> =
        hp["experiment"]["hparam_infos"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(infos.contains(&"optimizer.lr") && infos.contains(&"m2m.gamma"), "{infos:?}");
    let metrics: Vec<&str> = hp["experiment"]["metric_infos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"]["tag"].as_str().unwrap())
        .collect();
    assert!(metrics.contains(&"test/bACC") && metrics.contains(&"best_val/test_bACC"), "{metrics:?}");
    assert_eq!(hp["session_start_info"]["hparams"]["optimizer.lr"], 0.05);
    assert_eq!(hp["session_start_info"]["hparams"]["m2m.gamma"], 1e-6);
    assert_eq!(hp["session_end_info"]["status"], "STATUS_SUCCESS");
    assert_eq!(steps(r, "best_val/test_bACC"), vec![2]);
}

#[test]
fn a_fork_logs_its_own_epochs_and_says_where_the_first_ones_are() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, false);
    std::fs::write(tmp.path().join("base.ron"), tiny_suite_base(&data, 3)).unwrap();
    let suite = tmp.path().join("suite.ron");
    std::fs::write(
        &suite,
        format!(
            r#"(name: "tb", base: "base.ron", output_dir: "{}", seeds: [0],
                methods: [(name: "ERM"), (name: "DRS", recipe: (sampler: (kind: ClassBalanced, from_epoch: 1))),
                          (name: "Quiet", recipe: (tensorboard: false))])"#,
            tmp.path().join("out").display()
        ),
    )
    .unwrap();
    run_ok(m2m().arg("suite").arg(&suite));
    let cells = tmp.path().join("out/cells");
    assert!(!cells.join("Quiet.Mnist.r4.d3.s0/tensorboard").exists(), "tensorboard: false writes no log");
    let Some(read) = read_tensorboard(&cells) else { return };
    let runs = read["runs"].as_object().unwrap();
    let mut names: Vec<&String> = runs.keys().collect();
    names.sort();
    assert_eq!(names, [".", "DRS.Mnist.r4.d3.s0/tensorboard", "ERM.Mnist.r4.d3.s0/tensorboard"], "one run per cell");
    // The suite's experiment at the root: every recipe field any cell sets.
    let experiment = &runs["."]["hparams"]["experiment"]["hparam_infos"];
    let fields: Vec<&str> = experiment.as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(fields.contains(&"sampler.kind") && fields.contains(&"optimizer.lr"), "{fields:?}");
    let (erm, drs) = (&runs["ERM.Mnist.r4.d3.s0/tensorboard"], &runs["DRS.Mnist.r4.d3.s0/tensorboard"]);
    assert_eq!(steps(erm, "train/loss"), vec![0, 1, 2]);
    assert_eq!(steps(drs, "train/loss"), vec![1, 2], "the fork's own epochs only");
    let note = drs["text"]["fork"][0][1].as_str().expect("the fork says where its first epoch is");
    assert!(
        note.contains("Epochs 0 to 0 of this run were taken over from") && note.contains("ERM.Mnist.r4.d3.s0"),
        "{note}"
    );
}
