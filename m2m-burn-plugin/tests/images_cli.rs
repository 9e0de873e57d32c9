//! The shipped image-folder recipe and suite, end to end through the `m2m` binary as a
//! user runs them: Fashion-MNIST written as PNG files (`m2m export-images`), then
//! `m2m suite recipes/suites/images-fmnist-png.ron` (ERM, DRS, M2m with its g) on them.

use std::path::Path;
use std::process::Command;

use m2m_burn_plugin::data::DatasetName;

fn m2m(cwd: &Path, cache: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(args)
        .current_dir(cwd)
        .env("M2M_CACHE", cache)
        .output()
        .expect("running m2m");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "m2m {args:?} failed:\n{text}");
    text
}

#[test]
fn the_image_folder_suite_runs_on_png_files_of_fashion_mnist() {
    DatasetName::FashionMnist.locate(None).expect("Fashion-MNIST (scripts/env.sh installs it)");
    let recipes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recipes");
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    // The commands of the recipe's header comment.
    let out = m2m(
        tmp.path(),
        &cache,
        &["export-images", "--dataset", "fashion-mnist", "--per-class", "300", "--out", "data/fashion-mnist-png"],
    );
    assert!(out.contains("wrote 6000 PNG files"), "{out}");
    assert_eq!(std::fs::read_dir(tmp.path().join("data/fashion-mnist-png/train/9-Ankle boot")).unwrap().count(), 300);
    let suite = recipes.join("suites/images-fmnist-png.ron");
    let log = m2m(tmp.path(), &cache, &["suite", suite.to_str().unwrap()]);

    let dir = tmp.path().join("runs/suites/images-fmnist-png");
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("3 of 3 cells finished") && report.contains("| FashionPng ρ=100 |"), "{report}");
    for method in ["ERM", "DRS", "M2m"] {
        assert!(report.contains(&format!("| {method} |")), "{report}");
    }
    // The data as the recipe describes it: the long tail cut from the PNG files, and the
    // normalisation computed from those training images and recorded.
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("cells/ERM.FashionPng.r100.d0.s0/data-manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["train_counts"], serde_json::json!([300, 179, 107, 64, 38, 23, 13, 8, 5, 3]));
    assert_eq!(manifest["format"]["class_names"][9], "9-Ankle boot");
    let mean = manifest["format"]["mean"][0].as_f64().unwrap();
    assert!(
        mean > 0.2 && mean < 0.4 && mean != 0.2860_f32 as f64,
        "the training subset's own mean, not Fashion-MNIST's: {mean}"
    );
    // Decoded once: every later cell (and g) read the cache.
    assert_eq!(std::fs::read_dir(cache.join("images")).unwrap().count(), 2, "{log}");
    assert!(log.contains("from the cache"), "{log}");
}
