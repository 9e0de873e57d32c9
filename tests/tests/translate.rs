//! `m2m translate` on a folder of PNG files with an imported g: one record per
//! translation for every kind of target, the gallery, and named errors for bad images.

use std::path::{Path, PathBuf};

use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::data::DatasetName;
use m2m_burn_plugin::model::Net;
use m2m_burn_plugin::run::diagnose::{run_translate, Targets, TranslateOptions};
use m2m_core::translation::{RandomStart, SeedSelection, TranslationParams};
use m2m_tests::torch_files::{as_reference_state_dict, legacy_bytes, Layout};

/// Six 28x28 greyscale PNGs, two each of classes 0, 1 and 2, named like foolbox's files.
fn write_pngs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..6u32 {
        let label = i / 2;
        let img = image::GrayImage::from_fn(28, 28, |x, y| {
            image::Luma([((x * 7 + y * 3 + i * 40 + label * 60) % 256) as u8])
        });
        img.save(dir.join(format!("mnist_{i:02}_{label}.png"))).unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "not an image").unwrap();
}

fn options(g: PathBuf, images: PathBuf, targets: Targets, out: &Path) -> TranslateOptions {
    TranslateOptions {
        g,
        f: None,
        dataset: DatasetName::Mnist,
        images,
        labels: None,
        prefix: Some("mnist_".into()),
        limit: None,
        targets,
        config: TranslationParams { steps: 2, random_start: RandomStart::None, ..Default::default() }.check().unwrap(),
        seed: 0,
        batch_size: 7,
        json: Some(out.join("t.json")),
        logits: Some(out.join("logits.json")),
        gallery: Some(out.join("gallery.png")),
        gallery_rows: 4,
        amplify: 10.0,
    }
}

#[test]
fn translations_for_every_kind_of_target_with_json_and_gallery() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("png");
    write_pngs(&images);
    let (mean, std) = DatasetName::Mnist.normalization();
    let spec = m2m_burn_plugin::model::ModelSpec {
        architecture: m2m_burn_plugin::model::Architecture::ResNet32,
        cosine_head: false,
        in_channels: 1,
        num_classes: 10,
        mean,
        std,
    };
    let net: Net<Cpu> = spec.init_seeded(1, &Default::default());
    let g = tmp.path().join("g.t7");
    std::fs::write(&g, legacy_bytes(&as_reference_state_dict(&net, false), Layout::NestedNet)).unwrap();
    let device = Default::default();

    let o = options(g.clone(), images.clone(), Targets::AllOthers, tmp.path());
    let s = run_translate::<Cpu>(&o, &device).unwrap();
    assert_eq!(s.records.len(), 6 * 9, "every image toward every other class");
    assert_eq!(s.per_target.iter().map(|c| c.attempts).sum::<usize>(), 54);
    assert_eq!(s.per_target[0].attempts, 4, "class 0: the four images of classes 1 and 2");
    assert!(s.g_import.is_some(), "g came from a PyTorch file");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("t.json")).unwrap()).unwrap();
    let first = &json[0];
    assert_eq!(first["image"], "mnist_00_0.png");
    assert_eq!((first["seed_class"].as_u64(), first["target"].as_u64()), (Some(0), Some(1)));
    for key in ["g_target_prob_before", "g_target_prob", "f_seed_prob_before", "f_seed_prob", "l2", "accepted"] {
        assert!(!first[key].is_null(), "{key} missing");
    }
    // Two steps of 0.1 move an image by at most 0.2 (clamping can only shorten it).
    assert!(
        s.records.iter().all(|r| r.l2 > 0.0 && r.l2 <= 0.2 + 1e-5),
        "{:?}",
        s.records.iter().map(|r| r.l2).collect::<Vec<_>>()
    );
    assert!(s.records.iter().all(|r| r.accepted == (r.g_target_prob as f64 >= 0.9)));
    let logits: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("logits.json")).unwrap()).unwrap();
    assert_eq!(logits.as_array().unwrap().len(), 6);
    assert_eq!(logits[5]["label"], 2);
    assert_eq!(logits[5]["g_logits"].as_array().unwrap().len(), 10);
    let gallery = image::open(tmp.path().join("gallery.png")).unwrap();
    assert_eq!(gallery.height(), 8 + 2 * 8 + 4 * (112 + 8) + 8, "4 rows of 28x28 images zoomed 4x");

    let o = Targets::Class(2);
    let s = run_translate::<Cpu>(&options(g.clone(), images.clone(), o, tmp.path()), &device).unwrap();
    assert_eq!(s.records.len(), 4);
    assert!(s.records.iter().all(|r| r.target == 2 && r.seed_class != 2 && r.p_accept.is_none()));

    // Planned: M2m's rules on the six images as one batch; class 0 is the largest and
    // never a target, and every planned seed comes from a larger class.
    let counts = vec![100, 50, 10, 10, 10, 10, 10, 10, 10, 10];
    let planned = Targets::Planned { counts: counts.clone(), beta: 0.999, selection: SeedSelection::PerSample };
    let s = run_translate::<Cpu>(&options(g.clone(), images.clone(), planned, tmp.path()), &device).unwrap();
    assert!(!s.records.is_empty());
    for r in &s.records {
        assert!(r.target != 0 && counts[r.seed_class] > counts[r.target], "{r:?}");
        assert!(r.p_accept.is_some() && r.drawn.is_some());
    }
}

#[test]
fn bad_images_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |dir: &Path| {
        m2m_burn_plugin::data::NamedImages::read(DatasetName::Mnist, dir, None, None).unwrap_err().to_string()
    };
    let dir = tmp.path().join("unlabelled");
    std::fs::create_dir_all(&dir).unwrap();
    image::GrayImage::new(28, 28).save(dir.join("shirt.png")).unwrap();
    let e = read(&dir);
    assert!(e.contains("shirt.png") && e.contains("_L"), "{e}");

    let dir = tmp.path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    image::GrayImage::new(32, 32).save(dir.join("a_1.png")).unwrap();
    let e = read(&dir);
    assert!(e.contains("a_1.png") && e.contains("32x32") && e.contains("28x28"), "{e}");

    let dir = tmp.path().join("label");
    std::fs::create_dir_all(&dir).unwrap();
    image::GrayImage::new(28, 28).save(dir.join("a_12.png")).unwrap();
    let e = read(&dir);
    assert!(e.contains("a_12.png") && e.contains("label 12"), "{e}");

    let dir = tmp.path().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a_1.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let e = read(&dir);
    assert!(e.contains("a_1.png") && e.contains("PNG"), "{e}");

    let dir = tmp.path().join("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let e = read(&dir);
    assert!(e.contains("no PNG files"), "{e}");
}
