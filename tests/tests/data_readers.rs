//! The IDX and CIFAR readers on files written here, including damaged ones, and the
//! long-tailed construction on the real Fashion-MNIST when it is installed.

use m2m_burn_plugin::data::cifar::{self, CifarKind};
use m2m_burn_plugin::data::{
    idx, Augmentation, DataError, DataSource, DatasetName, DatasetSpec, EvalSplit, Imbalance, ImbalanceProfile,
    Normalization, Selection,
};
use m2m_tests::{gzip, write_cifar_dataset, write_idx_dataset};

fn spec(name: DatasetName, path: Option<std::path::PathBuf>, ratio: f64) -> DatasetSpec {
    DatasetSpec {
        source: DataSource::Builtin(name),
        path,
        normalization: Normalization::Standard,
        imbalance: Imbalance::Cut { profile: ImbalanceProfile::Exponential, ratio },
        max_per_class: None,
        selection: Selection::FirstInOrder,
        data_seed: 0,
        eval_split: EvalSplit::ValFromTest { val_fraction: 0.1 },
        max_eval_per_class: None,
        augmentation: Augmentation::NONE,
    }
}

#[test]
fn max_eval_per_class_keeps_the_first_test_images_of_each_class() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_dataset(tmp.path(), 12, 30, false);
    let (train, test) = DatasetName::Mnist.read(tmp.path()).unwrap();
    let capped = DatasetSpec { max_eval_per_class: Some(20), ..spec(DatasetName::Mnist, None, 2.0) };
    let p = capped.prepare_from(tmp.path().into(), train.clone(), test.clone()).unwrap();
    // 20 per class, of which the first 10% are validation.
    assert_eq!((p.val.len(), p.test.len()), (20, 180));
    assert_eq!(p.val.class_counts(), vec![2; 10]);
    // The kept images are the first 20 of each class in file order: the validation images
    // are the same as without the cap, the test images a prefix of each class's.
    let full = spec(DatasetName::Mnist, None, 2.0).prepare_from(tmp.path().into(), train, test).unwrap();
    assert_eq!(full.test.len(), 270);
    assert_eq!(
        p.val,
        full.val.select(
            &(0..full.val.len())
                .filter(|&i| full.val.labels[..=i].iter().filter(|&&y| y == full.val.labels[i]).count() <= 2)
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(p.manifest.test_size, 180);
}

#[test]
fn idx_gz_and_raw_read_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_dataset(&tmp.path().join("gz"), 12, 3, true);
    write_idx_dataset(&tmp.path().join("raw"), 12, 3, false);
    let (a_train, a_test) = DatasetName::Mnist.read(&tmp.path().join("gz")).unwrap();
    let (b_train, b_test) = DatasetName::Mnist.read(&tmp.path().join("raw")).unwrap();
    assert_eq!(a_train, b_train);
    assert_eq!(a_test, b_test);
    assert_eq!(a_train.len(), 120);
    assert_eq!((a_train.channels, a_train.height, a_train.width), (1, 28, 28));
    assert_eq!(a_train.class_counts(), vec![12; 10]);
    assert_eq!(a_test.len(), 30);
}

#[test]
fn idx_damage_is_reported_with_the_file_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_idx_dataset(dir, 5, 2, false);
    let images = dir.join("train-images-idx3-ubyte");
    let labels = dir.join("train-labels-idx1-ubyte");
    let good = std::fs::read(&images).unwrap();

    // wrong magic
    let mut bad = good.clone();
    bad[3] = 0x01;
    std::fs::write(&images, &bad).unwrap();
    let e = DatasetName::Mnist.read(dir).unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("magic number"), "{e}");

    // truncated
    std::fs::write(&images, &good[..good.len() - 100]).unwrap();
    let e = DatasetName::Mnist.read(dir).unwrap_err().to_string();
    assert!(e.contains("header announces 50 images"), "{e}");

    // label count differs from image count
    std::fs::write(&images, &good).unwrap();
    let (_, lab) = idx::encode(28, 28, &[], &[1, 2, 3]);
    std::fs::write(&labels, lab).unwrap();
    let e = DatasetName::Mnist.read(dir).unwrap_err();
    assert!(matches!(e, DataError::CountMismatch { n_images: 50, n_labels: 3, .. }), "{e}");

    // label out of range
    let (_, lab) = idx::encode(28, 28, &[], &[12; 50]);
    std::fs::write(&labels, lab).unwrap();
    let e = DatasetName::Mnist.read(dir).unwrap_err().to_string();
    assert!(e.contains("label 12") && e.contains("out of range"), "{e}");

    // damaged gzip stream
    let mut gz = gzip(&good);
    let cut = gz.len() / 2;
    gz.truncate(cut);
    std::fs::remove_file(&images).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz).unwrap();
    let e = DatasetName::Mnist.read(dir).unwrap_err().to_string();
    assert!(e.contains("gzip"), "{e}");
}

#[test]
fn missing_data_names_where_it_looked_and_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let e = DatasetName::FashionMnist.locate(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("not found") && e.contains("dataset-fashion-mnist"), "{e}");
    let e = DatasetName::Cifar10.locate(Some(tmp.path())).unwrap_err().to_string();
    assert!(e.contains("cifar-10-binary") && e.contains("`m2m data fetch cifar10` downloads it into"), "{e}");
    // A sub-folder with the usual name is found.
    write_idx_dataset(&tmp.path().join("fashion-mnist"), 2, 1, true);
    assert_eq!(DatasetName::FashionMnist.locate(Some(tmp.path())).unwrap(), tmp.path().join("fashion-mnist"));
}

#[test]
fn cifar10_binary_files_are_read_in_torchvision_order() {
    let tmp = tempfile::tempdir().unwrap();
    let labels = write_cifar_dataset(tmp.path(), CifarKind::Cifar10, 20);
    let (train, test) = DatasetName::Cifar10.read(tmp.path()).unwrap();
    assert_eq!(train.len(), 100);
    assert_eq!(test.len(), 20);
    assert_eq!((train.channels, train.height, train.width), (3, 32, 32));
    let expected: Vec<usize> = labels[..5].iter().flatten().map(|&y| y as usize).collect();
    assert_eq!(train.labels, expected);
    // The second record of data_batch_2 is image 21 of the training set.
    let raw = std::fs::read(tmp.path().join("data_batch_2.bin")).unwrap();
    assert_eq!(train.image(21), &raw[3073 + 1..2 * 3073]);
}

#[test]
fn cifar100_uses_fine_labels_and_rejects_damage() {
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dataset(tmp.path(), CifarKind::Cifar100, 30);
    let (train, _) = DatasetName::Cifar100.read(tmp.path()).unwrap();
    assert_eq!(train.num_classes, 100);
    assert_eq!(train.labels[1], 7); // (1*7+0) % 100, the fine label
                                    // A truncated file is not a whole number of records.
    let path = tmp.path().join("train.bin");
    let raw = std::fs::read(&path).unwrap();
    std::fs::write(&path, &raw[..raw.len() - 5]).unwrap();
    let e = DatasetName::Cifar100.read(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("train.bin") && e.contains("3074-byte records"), "{e}");
    // A fine label past 99.
    let mut rec = cifar::encode(CifarKind::Cifar100, &vec![0; cifar::IMAGE_BYTES], &[3]);
    rec[1] = 140;
    std::fs::write(&path, rec).unwrap();
    let e = DatasetName::Cifar100.read(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("label 140"), "{e}");
}

#[test]
fn cifar_lt_counts_on_written_files() {
    // 5 files x 1000 records with balanced labels: 500 per class; rho 10 on "CIFAR-10"
    // gives the LDAM/M2m counts scaled to N_max = 500.
    let tmp = tempfile::tempdir().unwrap();
    write_cifar_dataset(tmp.path(), CifarKind::Cifar10, 1000);
    let data = spec(DatasetName::Cifar10, Some(tmp.path().to_path_buf()), 10.0).prepare().unwrap();
    assert_eq!(data.manifest.train_counts, vec![500, 387, 299, 232, 179, 139, 107, 83, 64, 50]);
    assert_eq!(data.train.class_counts(), data.manifest.train_counts);
    // test_batch has 1000 records, 100 per class: 10 val + 90 test per class.
    assert_eq!(data.val.class_counts(), vec![10; 10]);
    assert_eq!(data.test.class_counts(), vec![90; 10]);
}

#[test]
fn ratio_that_empties_a_class_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_idx_dataset(tmp.path(), 10, 2, true);
    let e = spec(DatasetName::Mnist, Some(tmp.path().to_path_buf()), 100.0).prepare().unwrap_err().to_string();
    assert!(e.contains("dataset.ratio") && e.contains("no training image"), "{e}");
}

/// The real Fashion-MNIST (CI installs Debian's `dataset-fashion-mnist`).
#[test]
fn fashion_mnist_lt100_counts_and_m2m_split() {
    let Ok(dir) = DatasetName::FashionMnist.locate(None) else {
        if std::env::var_os("CI").is_some() {
            panic!("CI must install dataset-fashion-mnist");
        }
        eprintln!("Fashion-MNIST not installed; skipping");
        return;
    };
    let (train, test) = DatasetName::FashionMnist.read(&dir).unwrap();
    assert_eq!((train.len(), test.len()), (60000, 10000));
    assert_eq!(train.class_counts(), vec![6000; 10]);
    let data = spec(DatasetName::FashionMnist, None, 100.0).prepare_from(dir, train, test).unwrap();
    assert_eq!(data.manifest.train_counts, vec![6000, 3596, 2156, 1292, 774, 464, 278, 166, 100, 60]);
    // Known from the recipe alone (suite --dry-run), by the same rules.
    let expected = spec(DatasetName::FashionMnist, None, 100.0).expected_train_counts();
    assert_eq!(expected.as_ref(), Some(&data.manifest.train_counts));
    assert_eq!(data.manifest.train_total, 14886);
    assert_eq!(data.val.class_counts(), vec![100; 10]);
    assert_eq!(data.test.class_counts(), vec![900; 10]);
}
