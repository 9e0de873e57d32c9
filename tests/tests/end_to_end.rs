//! A short ERM run through burn-train on written IDX data: run directory contents,
//! metrics, model selection, resume after an interruption, and a finished run skipped.

use std::path::Path;

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::recipe::load_recipe;
use m2m_burn_plugin::run::{run_recipe, ProgressView};
use m2m_burn_plugin::run_dir::RunState;
use m2m_tests::{records, write_idx_dataset};

fn recipe_text(data: &Path, out: &Path, epochs: usize) -> String {
    format!(
        r#"(
    name: "tiny",
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 4.0, selection: SeededShuffle,
              data_seed: 3, eval_split: ValFromTest(val_fraction: 0.2),
              augmentation: (crop_padding: 2, horizontal_flip: false)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
    schedule: (epochs: {epochs}, warmup_epochs: 1, milestones: [(epoch: 2, factor: 0.1)]),
    sampler: (kind: ClassBalanced, from_epoch: 2),
    batch_size: 32,
    eval_batch_size: 64,
    seed: 7,
    output_dir: "{}",
)"#,
        data.display(),
        out.display()
    )
}

#[test]
fn erm_run_writes_results_resumes_and_skips_when_done() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    let out = tmp.path().join("runs");
    let recipe_path = tmp.path().join("tiny.ron");
    std::fs::write(&recipe_path, recipe_text(&data, &out, 3)).unwrap();
    let recipe = load_recipe(&recipe_path, &[]).unwrap();

    let outcome = run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap();
    assert!(outcome.trained_now);
    let run = out.join("tiny");
    for f in [
        "recipe.resolved.ron",
        "data-manifest.json",
        "metrics.csv",
        "metrics.jsonl",
        "final.json",
        "state.json",
        "model-best-val.mpk",
        "model-best-val.meta.json",
        "model-last.mpk",
    ] {
        assert!(run.join(f).is_file(), "missing {f}");
    }
    let recs = records(&run);
    assert_eq!(recs.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![0, 1, 2]);
    // The sampler plan: natural before epoch 2, class-balanced from it.
    assert_eq!(format!("{:?}", recs[1].sampler), "Natural");
    assert_eq!(format!("{:?}", recs[2].sampler), "ClassBalanced");
    // The LR schedule: warm-up epoch 0 at lr0/1, x0.1 from epoch 2.
    assert!(
        (recs[0].lr - 0.05).abs() < 1e-12 && (recs[2].lr - 0.005).abs() < 1e-12,
        "{:?}",
        recs.iter().map(|r| r.lr).collect::<Vec<_>>()
    );
    // The learnable pattern is learnt.
    assert!(recs[2].test.balanced_accuracy > 0.5, "{}", recs[2].test.balanced_accuracy);
    // 4 val + 16 test per class; counts 40 -> 10 at rho 4.
    assert_eq!(recs[0].val.num_samples, 40);
    assert_eq!(recs[0].test.num_samples, 160);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("data-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["train_counts"][0], 40);
    assert_eq!(manifest["train_counts"][9], 10);
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with("epoch,lr,sampler"));
    let fin: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("final.json")).unwrap()).unwrap();
    let best_epoch = fin["best_val"]["epoch"].as_u64().unwrap() as usize;
    let best_val = recs.iter().map(|r| r.val.balanced_accuracy).fold(f64::MIN, f64::max);
    assert_eq!(recs[best_epoch].val.balanced_accuracy, best_val);
    assert!(recs[best_epoch + 1..].iter().all(|r| r.val.balanced_accuracy < best_val), "ties go to the later epoch");

    // A finished run is not trained again.
    let again = run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap();
    assert!(!again.trained_now);
    // ... also when its recipe file was written by an older m2m that lacked some fields.
    let resolved = std::fs::read_to_string(run.join("recipe.resolved.ron")).unwrap();
    let older: String = resolved
        .lines()
        .filter(|l| !l.contains("eval_logit_adjustment") && !l.contains("backend"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(older, resolved);
    std::fs::write(run.join("recipe.resolved.ron"), older).unwrap();
    assert!(!run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap().trained_now);

    // A checkpoint that never reached the disk (burn saves asynchronously): state says 3
    // epochs are done but model-3 is missing, so the run falls back to epoch 2's
    // checkpoint and trains the last epoch again, instead of failing to load.
    std::fs::remove_file(run.join("final.json")).unwrap();
    std::fs::remove_file(run.join("burn/checkpoint/model-3.mpk")).unwrap();
    let ahead = RunState { completed_epochs: 3, total_epochs: 3, finished: false, stopped: None };
    std::fs::write(run.join("state.json"), serde_json::to_string(&ahead).unwrap()).unwrap();
    assert!(run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap().trained_now);
    let after_fallback = records(&run);
    assert_eq!(after_fallback.len(), 3);
    assert_eq!(after_fallback[..2], recs[..2]);
    assert_ne!(after_fallback[2].seconds, recs[2].seconds, "the last epoch was trained again");

    // Damaged the way a crash or a full disk damages files: the newest checkpoint cut in
    // half (burn writes in place). No panic: the run resumes from epoch 2's checkpoint.
    let ckpt = run.join("burn/checkpoint");
    let interrupt = || {
        std::fs::remove_file(run.join("final.json")).unwrap();
        std::fs::write(run.join("state.json"), serde_json::to_string(&ahead).unwrap()).unwrap();
    };
    interrupt();
    let model3 = std::fs::read(ckpt.join("model-3.mpk")).unwrap();
    std::fs::write(ckpt.join("model-3.mpk"), &model3[..model3.len() / 2]).unwrap();
    assert!(run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap().trained_now);
    let after_damage = records(&run);
    assert_eq!(after_damage[..2], recs[..2], "epochs 0 and 1 were kept");
    assert_ne!(after_damage[2].seconds, after_fallback[2].seconds, "epoch 2 was trained again");

    // Every checkpoint damaged (garbage in one, the other truncated to nothing): the run
    // starts over with a warning instead of panicking, and the same seed retrains the
    // same epochs.
    interrupt();
    std::fs::write(ckpt.join("optim-2.mpk"), b"not a checkpoint").unwrap();
    std::fs::write(ckpt.join("scheduler-3.mpk"), b"").unwrap();
    assert!(run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap().trained_now);
    let restarted = records(&run);
    assert_eq!(restarted.len(), 3);
    assert_ne!(restarted[0].seconds, recs[0].seconds, "epoch 0 was trained again");
    for (a, b) in restarted.iter().zip(&recs) {
        assert_eq!(
            (a.train_loss, &a.val, &a.test),
            (b.train_loss, &b.val, &b.test),
            "epoch {}: not the same training",
            a.epoch
        );
    }
    let recs = restarted;

    // Simulate an interruption after epoch 2 of 3: state says 2 done.
    std::fs::remove_file(run.join("final.json")).unwrap();
    let state = RunState { completed_epochs: 2, total_epochs: 3, finished: false, stopped: None };
    std::fs::write(run.join("state.json"), serde_json::to_string(&state).unwrap()).unwrap();

    // Resume from the run directory alone (what `m2m resume RUN_DIR` does).
    let from_run_dir = load_recipe(&run.join("recipe.resolved.ron"), &[]).unwrap();
    assert_eq!(from_run_dir, recipe);
    let resumed = run_recipe::<Cpu>(&from_run_dir, Default::default(), ProgressView::Log).unwrap();
    assert!(resumed.trained_now);
    let after = records(&run);
    assert_eq!(after.len(), 3);
    // Epochs 0 and 1 were kept as they were (not retrained), epoch 2 was trained again.
    assert_eq!(after[..2], recs[..2]);
    assert_ne!(after[2].seconds, recs[2].seconds);
    // Resuming restored the model, optimiser and scheduler of epoch 2: same LR, and the
    // result is close to the uninterrupted run (the data order is per-epoch seeded).
    assert_eq!(after[2].lr, recs[2].lr);
    assert!((after[2].test.balanced_accuracy - recs[2].test.balanced_accuracy).abs() < 0.1);

    // A different recipe in the same run directory is refused, and nothing is lost.
    std::fs::write(&recipe_path, recipe_text(&data, &out, 4)).unwrap();
    let changed = load_recipe(&recipe_path, &[]).unwrap();
    let e = run_recipe::<Cpu>(&changed, Default::default(), ProgressView::Log).unwrap_err().to_string();
    assert!(e.contains("different recipe"), "{e}");
    assert!(run.join("final.json").is_file());
}

#[test]
fn posthoc_logit_adjustment_shifts_predictions_towards_rare_classes() {
    use burn::tensor::{Tensor, TensorData};
    use m2m_burn_plugin::train::{logit_adjustment, Evaluation, ImageBatch};
    use m2m_core::metrics::ClassGroups;
    type B = burn::backend::Flex;
    let device = Default::default();
    // Two classes with 90 / 10 training images: log-prior gap ln(9) = 2.197.
    let counts = [90, 10];
    let offsets = logit_adjustment(1.0, &counts).unwrap();
    assert!((offsets[1] - offsets[0] - 9f32.ln()).abs() < 1e-5, "{offsets:?}");
    assert!(logit_adjustment(0.0, &counts).is_none());
    // Both samples are class 1; logit margins for class 0 of 1.0 and 3.0.
    let logits = || Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, 3.0, 0.0], [2, 2]), &device);
    let batch = ImageBatch::<B> {
        images: Tensor::zeros([2, 1, 1, 1], &device),
        targets: m2m_core::translation::int_tensor(&[1, 1], &device),
        labels: vec![1, 1],
    };
    let groups = ClassGroups::new(counts.to_vec());
    let mut plain = Evaluation::new(2);
    plain.add(logits(), &batch);
    assert_eq!(plain.report(&groups).per_class_recall[1], Some(0.0));
    // Adjusted: 1.0 < 2.197 flips the first sample to class 1, 3.0 > 2.197 keeps the second.
    let mut adjusted = Evaluation::adjusted(2, Some(offsets));
    adjusted.add(logits(), &batch);
    assert_eq!(adjusted.report(&groups).per_class_recall[1], Some(0.5));
}
