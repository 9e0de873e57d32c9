//! Foreign checkpoints: PyTorch legacy and zip files and safetensors, written by the
//! tests, imported into ResNet-32 with the same outputs as the network they came from;
//! every way a file can be wrong ends in a named error; mutated and truncated files
//! never panic.

use std::path::Path;

use burn::tensor::{Distribution, Tensor};
use m2m_burn_plugin::backend::Cpu;
use m2m_burn_plugin::import::{
    import_net, load_any_classifier, ErrorKind, Format, ImportError, LoadModelError, StateDict,
};
use m2m_burn_plugin::model::{save_classifier, Architecture, Classifier, Mode, ModelSpec, Net};
use m2m_tests::torch_files::{as_reference_state_dict, legacy_bytes, safetensors_bytes, zip_bytes, Entry, Layout};

fn spec(classes: usize, cosine_head: bool) -> ModelSpec {
    let (mean, std) = m2m_burn_plugin::data::DatasetName::Cifar10.normalization();
    ModelSpec { architecture: Architecture::ResNet32, cosine_head, in_channels: 3, num_classes: classes, mean, std }
}

fn logits(net: &Net<Cpu>, x: &Tensor<Cpu, 4>) -> Vec<f32> {
    net.logits(x.clone(), Mode::Eval).into_data().to_vec().unwrap()
}

/// A ResNet-32 with non-trivial BatchNorm statistics (a few training-mode forwards).
fn trained_like(classes: usize, cosine: bool) -> Net<Cpu> {
    let device = Default::default();
    let net = spec(classes, cosine).init_seeded::<Cpu>(classes as u64, &device);
    for step in 0..2 {
        let x = m2m_tests::random::<Cpu, 4>([4, 3, 32, 32], Distribution::Uniform(0.0, 1.0), 1 + step, &device);
        let _ = net.logits(x, Mode::Train);
    }
    net
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn import_err(spec: &ModelSpec, path: &Path) -> ErrorKind {
    let sd = match StateDict::read(path) {
        Ok(sd) => sd,
        Err(e) => return e.kind,
    };
    match import_net::<Cpu>(spec, &sd, &Default::default()) {
        Ok(_) => panic!("{} imported, an error was expected", path.display()),
        Err(kind) => kind,
    }
}

#[test]
fn every_format_imports_to_the_same_network() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Default::default();
    let x = m2m_tests::random::<Cpu, 4>([3, 3, 32, 32], Distribution::Uniform(0.0, 1.0), 2, &device);
    for cosine in [false, true] {
        let net = trained_like(10, cosine);
        let want = logits(&net, &x);
        let sd = as_reference_state_dict(&net, cosine);
        // DataParallel's `module.` prefix on the zip file.
        let prefixed: Vec<Entry> = sd.iter().map(|(k, s, v)| (format!("module.{k}"), s.clone(), v.clone())).collect();
        let files = [
            (write(tmp.path(), "legacy.t7", &legacy_bytes(&sd, Layout::NestedNet)), Format::TorchLegacy, Some("net")),
            (write(tmp.path(), "flat.pth", &zip_bytes(&prefixed, Layout::Flat)), Format::TorchZip, None),
            (write(tmp.path(), "nested.pt", &zip_bytes(&sd, Layout::NestedNet)), Format::TorchZip, Some("net")),
            (write(tmp.path(), "w.safetensors", &safetensors_bytes(&sd)), Format::Safetensors, None),
        ];
        for (path, format, nested) in files {
            let (imported, report) = load_any_classifier::<Cpu>(&spec(10, cosine), &path, &device).unwrap();
            let report = report.expect("a foreign file reports its mapping");
            assert_eq!(report.format, format, "{}", path.display());
            assert_eq!(report.nested_under.as_deref(), nested, "{}", path.display());
            assert_eq!(logits(&imported, &x), want, "{} (cosine head {cosine})", path.display());
            assert_eq!(report.ignored.len(), 31, "num_batches_tracked of 31 BatchNorms");
            if nested.is_some() {
                assert_eq!(report.outside, vec!["acc".to_string(), "epoch".to_string()]);
            }
            // What `m2m import` writes loads back as the same network.
            let saved = tmp.path().join("converted").join("model");
            save_classifier(&imported, &spec(10, cosine), &saved).unwrap();
            let (reloaded, none) = load_any_classifier::<Cpu>(&spec(10, cosine), &saved, &device).unwrap();
            assert!(none.is_none());
            assert_eq!(m2m_tests::snapshot(&reloaded), m2m_tests::snapshot(&imported));
            assert_eq!(logits(&reloaded, &x), want, "{} saved and reloaded", path.display());
        }
    }
}

#[test]
fn wrong_files_get_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let net = trained_like(10, false);
    let sd = as_reference_state_dict(&net, false);
    let s10 = spec(10, false);

    let p = write(tmp.path(), "junk.bin", b"definitely not a checkpoint");
    let e = StateDict::read(&p).err().unwrap();
    assert!(matches!(e.kind, ErrorKind::UnknownFormat { .. }), "{e}");
    assert!(e.to_string().contains("junk.bin"), "{e}");

    let legacy = legacy_bytes(&sd, Layout::NestedNet);
    let p = write(tmp.path(), "short.t7", &legacy[..legacy.len() - 1000]);
    assert!(matches!(import_err(&s10, &p), ErrorKind::Truncated(_)), "{}", import_err(&s10, &p));

    let missing: Vec<Entry> = sd.iter().filter(|(k, ..)| k != "stage_2.3.bn_a.running_var").cloned().collect();
    let p = write(tmp.path(), "missing.pt", &zip_bytes(&missing, Layout::Flat));
    assert_eq!(
        import_err(&s10, &p),
        ErrorKind::Keys { missing: vec!["stage_2.3.bn_a.running_var".into()], unexpected: vec![] }
    );

    let mut extra = sd.clone();
    extra.push(("fc2.weight".into(), vec![2, 2], vec![0.0; 4]));
    let p = write(tmp.path(), "extra.pt", &zip_bytes(&extra, Layout::Flat));
    let e = import_err(&s10, &p);
    assert_eq!(e, ErrorKind::Keys { missing: vec![], unexpected: vec!["fc2.weight".into()] });
    assert!(e.to_string().contains("unexpected keys (1): fc2.weight"), "{e}");

    let mut bad_shape = sd.clone();
    let i = bad_shape.iter().position(|(k, ..)| k == "stage_3.0.conv_a.weight").unwrap();
    bad_shape[i] = ("stage_3.0.conv_a.weight".into(), vec![64, 32, 1, 1], vec![0.0; 64 * 32]);
    let p = write(tmp.path(), "shape.safetensors", &safetensors_bytes(&bad_shape));
    let e = import_err(&s10, &p);
    assert_eq!(e, ErrorKind::Shapes(vec![("stage_3.0.conv_a.weight".into(), vec![64, 32, 3, 3], vec![64, 32, 1, 1])]));
    assert!(e.to_string().contains("stage_3.0.conv_a.weight: expected [64, 32, 3, 3], found [64, 32, 1, 1]"), "{e}");

    let p = write(tmp.path(), "ten.t7", &legacy);
    assert_eq!(import_err(&spec(100, false), &p), ErrorKind::ClassCount { found: 10, expected: 100 });
    assert!(matches!(import_err(&spec(10, true), &p), ErrorKind::Head { .. }));
    let gray = ModelSpec { in_channels: 1, mean: vec![0.5], std: vec![0.25], ..spec(10, false) };
    assert_eq!(import_err(&gray, &p), ErrorKind::InputChannels { found: 3, expected: 1 });
    let small = ModelSpec { architecture: Architecture::SmallCnn, ..spec(10, false) };
    assert!(matches!(import_err(&small, &p), ErrorKind::Architecture(_)));

    // Through the loader a recipe's `m2m.g` uses: the error names the file.
    let err = load_any_classifier::<Cpu>(&spec(100, false), &p, &Default::default()).err().unwrap();
    assert!(matches!(err, LoadModelError::Import(ImportError { .. })));
    assert!(err.to_string().contains("ten.t7") && err.to_string().contains("10 classes"), "{err}");
    let err = load_any_classifier::<Cpu>(&s10, &tmp.path().join("nothing-here.t7"), &Default::default()).err().unwrap();
    assert!(err.to_string().contains("nothing-here.t7"), "{err}");
}

/// Deterministic mutations of `bytes`: flipped, overwritten and inserted bytes, then
/// truncations; each must load or fail with an error, never panic.
fn fuzz(name: &str, bytes: &[u8], rounds: usize, check: &dyn Fn(&[u8])) {
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ bytes.len() as u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let run = |case: &str, data: &[u8]| {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(data))).is_err() {
            panic!("{name}: {case} panicked");
        }
    };
    for r in 0..rounds {
        let mut data = bytes.to_vec();
        let edits = 1 + (next() % 8) as usize;
        let mut what = Vec::new();
        for _ in 0..edits {
            let at = (next() % data.len() as u64) as usize;
            match next() % 4 {
                0 => data[at] ^= 1 << (next() % 8),
                1 => data[at] = [0x00, 0xff, 0x7f, 0x80, b'(', b'.', b'R', b'Q'][(next() % 8) as usize],
                2 => data.insert(at, (next() % 256) as u8),
                _ => {
                    // A huge little-endian length where one may be read.
                    let end = (at + 8).min(data.len());
                    data[at..end].fill(0xff);
                }
            }
            what.push(at);
        }
        run(&format!("mutation {r} at {what:?}"), &data);
    }
    for k in 0..64 {
        let cut = bytes.len() * k / 64;
        run(&format!("truncation to {cut} bytes"), &bytes[..cut]);
    }
}

#[test]
fn mutated_and_truncated_checkpoints_never_panic() {
    let device = Default::default();
    // A small state dict (most mutations land in the pickle) and a whole ResNet-32.
    let small: Vec<Entry> = vec![
        ("conv_1_3x3.weight".into(), vec![2, 3, 1, 1], (0..6).map(|i| i as f32).collect()),
        ("bn_1.running_var".into(), vec![2], vec![1.0, 2.0]),
    ];
    let net = trained_like(10, false);
    let full = as_reference_state_dict(&net, false);
    let s10 = spec(10, false);
    let check = |data: &[u8]| {
        if let Ok(sd) = StateDict::parse(Path::new("fuzz"), data) {
            let _ = import_net::<Cpu>(&s10, &sd, &device);
        }
    };
    for (name, entries, rounds) in [("small", &small, 400), ("resnet32", &full, 40)] {
        fuzz(&format!("{name} legacy"), &legacy_bytes(entries, Layout::NestedNet), rounds, &check);
        fuzz(&format!("{name} zip"), &zip_bytes(entries, Layout::Flat), rounds, &check);
        fuzz(&format!("{name} safetensors"), &safetensors_bytes(entries), rounds, &check);
    }
    // Real files (e.g. the M2m authors' .t7 checkpoints) when named: M2M_FUZZ_FILES=a:b.
    if let Ok(list) = std::env::var("M2M_FUZZ_FILES") {
        for path in list.split(':').filter(|p| !p.is_empty()) {
            let bytes = std::fs::read(path).unwrap();
            fuzz(path, &bytes, 200, &check);
        }
    }
}
