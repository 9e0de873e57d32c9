//! f starting from a checkpoint at a given epoch (the reference's `--net_t`): the run
//! trains from that epoch at the schedule's LR there, takes the file's SGD momentum
//! buffers, and records where it came from.

use std::path::{Path, PathBuf};

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::model::Net;
use m2m_burn_plugin::recipe::load_recipe;
use m2m_burn_plugin::run::{run_recipe, ProgressView};
use m2m_burn_plugin::train::StartRecord;
use m2m_tests::torch_files::{as_reference_state_dict, legacy_bytes_with_momentum, Entry, Layout};
use m2m_tests::{records, snapshot, write_idx_dataset};

fn recipe(dir: &Path, data: &Path, name: &str, checkpoint: &Path) -> PathBuf {
    let text = format!(
        r#"(
    name: "{name}",
    dataset: (name: Mnist, path: "{}", imbalance: Exponential, ratio: 4.0, selection: SeededShuffle,
              data_seed: 3, eval_split: ValFromTest(val_fraction: 0.2), max_eval_per_class: 10,
              augmentation: (crop_padding: 2, horizontal_flip: false)),
    model: (architecture: ResNet32),
    optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
    schedule: (epochs: 4, milestones: [(epoch: 3, factor: 0.1)]),
    start_from: (checkpoint: "{}", epoch: 3),
    batch_size: 32,
    eval_batch_size: 64,
    seed: 7,
    output_dir: "{}",
)"#,
        data.display(),
        checkpoint.display(),
        dir.join("runs").display()
    );
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, text).unwrap();
    path
}

fn last_model(dir: &Path, name: &str, spec: &m2m_burn_plugin::model::ModelSpec) -> Vec<Vec<f32>> {
    let net: Net<Cpu> = m2m_burn_plugin::model::load_classifier(
        spec,
        &dir.join("runs").join(name).join("model-last"),
        &Default::default(),
    )
    .unwrap();
    snapshot(&net)
}

#[test]
fn f_continues_from_a_checkpoint_with_its_momentum() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, false);
    // The network and momentum buffers of a "reference" checkpoint.
    let probe = load_recipe(&recipe(tmp.path(), &data, "probe", Path::new("x.t7")), &[]).unwrap();
    let spec = probe.model_spec(&probe.dataset.known_format().unwrap());
    let net: Net<Cpu> = spec.init_seeded(1, &Default::default());
    let sd = as_reference_state_dict(&net, false);
    let params: Vec<&Entry> =
        sd.iter().filter(|(k, ..)| !k.contains("running_") && !k.ends_with("num_batches_tracked")).collect();
    assert_eq!(params.len(), 95, "ResNet-32's trainable tensors");
    let momentum = |scale: f32| -> Vec<Entry> {
        params
            .iter()
            .map(|(k, s, v)| {
                (k.clone(), s.clone(), v.iter().enumerate().map(|(i, _)| scale * ((i % 7) as f32 - 3.0)).collect())
            })
            .collect()
    };
    let files = [("with", momentum(0.05)), ("zero", momentum(0.0)), ("none", Vec::new())];
    for (name, buffers) in &files {
        let file = tmp.path().join(format!("{name}.t7"));
        std::fs::write(&file, legacy_bytes_with_momentum(&sd, Layout::NestedNet, buffers)).unwrap();
        let r = load_recipe(&recipe(tmp.path(), &data, name, &file), &[]).unwrap();
        run_recipe::<Cpu>(&r, Default::default(), ProgressView::Log).unwrap();
        let run = tmp.path().join("runs").join(name);
        let recs = records(&run);
        // Only epoch 3 is trained, at the schedule's LR there (0.05 x 0.1).
        assert_eq!(recs.iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![3], "{name}");
        assert!((recs[0].lr - 0.005).abs() < 1e-12, "{name}: lr {}", recs[0].lr);
        let start: StartRecord =
            serde_json::from_str(&std::fs::read_to_string(run.join("start.json")).unwrap()).unwrap();
        assert_eq!(start.epoch, 3);
        assert_eq!(start.checkpoint, file);
        assert_eq!(start.parameters, 95);
        assert_eq!(start.momentum_buffers, buffers.len(), "{name}");
        assert!(start.format.contains("legacy"), "{}", start.format);
    }
    let with = last_model(tmp.path(), "with", &spec);
    let zero = last_model(tmp.path(), "zero", &spec);
    let none = last_model(tmp.path(), "none", &spec);
    // A zero buffer is what SGD has without one: bit-identical runs. The file's
    // buffers change the first steps, so the trained network differs.
    assert_eq!(zero, none);
    assert_ne!(with, none);
    // The first epoch changed the imported network (it trained).
    assert_ne!(none, m2m_tests::snapshot(&net));

    // A model saved by m2m is a starting point too (no momentum in it).
    let ours = tmp.path().join("runs").join("none").join("model-last");
    let r = load_recipe(&recipe(tmp.path(), &data, "ours", &ours), &[]).unwrap();
    run_recipe::<Cpu>(&r, Default::default(), ProgressView::Log).unwrap();
    let start: StartRecord =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("runs/ours/start.json")).unwrap()).unwrap();
    assert_eq!((start.format.as_str(), start.momentum_buffers, start.parameters), ("m2m model", 0, 95));
    assert!(start.not_carried.iter().any(|n| n.contains("momentum")), "{:?}", start.not_carried);
    assert_eq!(records(&tmp.path().join("runs/ours")).iter().map(|r| r.epoch).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn start_from_fields_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let path = recipe(tmp.path(), Path::new("data"), "bad", Path::new("f.t7"));
    let e = load_recipe(&path, &["start_from.epoch=4".into()]).unwrap_err().to_string();
    assert!(e.contains("start_from.epoch") && e.contains("1..4"), "{e}");
    let e = load_recipe(&path, &["start_from.epoch=0".into()]).unwrap_err().to_string();
    assert!(e.contains("start_from.epoch"), "{e}");
    // A checkpoint that is not there: the run stops with the path in the message.
    let data = tmp.path().join("data");
    write_idx_dataset(&data, 40, 20, false);
    let r = load_recipe(&recipe(tmp.path(), &data, "missing", &tmp.path().join("nowhere.t7")), &[]).unwrap();
    let e = format!("{:#}", run_recipe::<Cpu>(&r, Default::default(), ProgressView::Log).unwrap_err());
    assert!(e.contains("start_from.checkpoint") && e.contains("nowhere.t7"), "{e}");
}
