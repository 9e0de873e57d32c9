//! A diverging run stops with an error that says what happened, and keeps what was
//! already written.

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::recipe::load_recipe;
use m2m_burn_plugin::run::{run_recipe, ProgressView};
use m2m_tests::{records, write_idx_dataset};

#[test]
fn a_nan_loss_stops_the_run_with_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, true);
    let out = tmp.path().join("runs");
    // Epoch 0 trains normally; from epoch 1 the learning rate is 10 * 1e6 (factor 1e6),
    // which overflows the weights within a few steps.
    let text = format!(
        r#"(
    name: "diverge",
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 4.0, selection: FirstInOrder,
              data_seed: 0, eval_split: ValFromTest(val_fraction: 0.2),
              augmentation: (crop_padding: 0, horizontal_flip: false)),
    model: (architecture: SmallCnn),
    optimizer: (lr: 0.01, momentum: 0.9, weight_decay: 0.0),
    schedule: (epochs: 3, milestones: [(epoch: 1, factor: 1e30)]),
    batch_size: 32,
    seed: 0,
    output_dir: "{}",
)"#,
        data.display(),
        out.display()
    );
    let path = tmp.path().join("diverge.ron");
    std::fs::write(&path, text).unwrap();
    let recipe = load_recipe(&path, &[]).unwrap();
    let e = format!("{:#}", run_recipe::<Cpu>(&recipe, Default::default(), ProgressView::Log).unwrap_err());
    assert!(e.contains("training loss became") && e.contains("epoch 1"), "{e}");
    // Epoch 0 is kept, with its model and state; no final.json was written.
    let run = out.join("diverge");
    assert_eq!(records(&run).len(), 1);
    assert!(run.join("model-best-val.mpk").is_file());
    assert!(!run.join("final.json").exists());
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["completed_epochs"], 1);
    // TensorBoard: epoch 0's curves, and the hparams session ended as a failure.
    if let Some(read) = m2m_tests::read_tensorboard(&run.join("tensorboard")) {
        let board = &read["runs"]["."];
        assert_eq!(board["scalars"]["train/loss"].as_array().map(Vec::len), Some(1), "{:?}", board["tags"]);
        assert_eq!(board["hparams"]["session_end_info"]["status"], "STATUS_FAILURE");
    }
}
