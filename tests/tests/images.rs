//! Users' image files (`dataset.images`): both layouts read back exactly what was written,
//! through the same long-tailed machinery as the built-in sets; fitting, caching and every
//! kind of bad input (named file, class or line; never a panic).

use std::path::{Path, PathBuf};

use m2m_burn_plugin::data::images::{
    export_class_folders, export_split_files, ClassList, Color, Fit, ImageCache, ImageFiles, ImageLayout, ImageSize,
};
use m2m_burn_plugin::data::{
    channel_statistics, Augmentation, DataSource, DatasetName, DatasetSpec, EvalSplit, ImageSet, Imbalance,
    ImbalanceProfile, Normalization, Selection,
};
use m2m_burn_plugin::recipe::load_recipe;
use m2m_tests::{bytes, write_idx_dataset};

/// `n` images per class of `classes` classes, `c`x`h`x`w`, class k around brightness 20k.
fn synthetic(classes: usize, n: usize, c: usize, h: usize, w: usize, seed: u64) -> ImageSet {
    let per = c * h * w;
    let labels: Vec<usize> = (0..classes * n).map(|i| i % classes).collect();
    let noise = bytes(labels.len() * per, seed);
    let pixels = noise.iter().enumerate().map(|(j, &v)| (labels[j / per] * 20) as u8 + v / 8).collect();
    ImageSet::new(c, h, w, classes, pixels, labels).unwrap()
}

fn folders(train: &str, test: &str, val: Option<&str>) -> ImageLayout {
    ImageLayout::ClassFolders { train: train.into(), test: test.into(), val: val.map(PathBuf::from) }
}

fn split_files(val: bool, strip_prefix: Option<&str>) -> ImageLayout {
    ImageLayout::SplitFiles {
        train: "train.txt".into(),
        test: "test.txt".into(),
        val: val.then(|| "val.txt".into()),
        strip_prefix: strip_prefix.map(String::from),
    }
}

fn files(layout: ImageLayout, color: Color, (h, w): (usize, usize), cache: ImageCache) -> ImageFiles {
    ImageFiles {
        name: "Mine".into(),
        layout,
        classes: ClassList::Sorted,
        color,
        size: ImageSize { height: h, width: w },
        fit: Fit::Exact,
        cache,
    }
}

/// A data set spec over `source` in `path`: FromTrain normalisation, exponential, the
/// first images in order, the whole test set; tests change what they exercise.
fn spec(source: DataSource, path: &Path) -> DatasetSpec {
    DatasetSpec {
        source,
        path: Some(path.to_path_buf()),
        normalization: Normalization::FromTrain,
        imbalance: Imbalance::Cut { profile: ImbalanceProfile::Exponential, ratio: 1.0 },
        max_per_class: None,
        selection: Selection::FirstInOrder,
        data_seed: 0,
        eval_split: EvalSplit::FullTest,
        max_eval_per_class: None,
        augmentation: Augmentation::NONE,
    }
}

fn exponential(ratio: f64) -> Imbalance {
    Imbalance::Cut { profile: ImbalanceProfile::Exponential, ratio }
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|k| format!("class {k}")).collect()
}

/// Per class, the images of that class in order (layouts order images differently
/// across classes, never within one).
fn by_class(set: &ImageSet) -> Vec<Vec<&[u8]>> {
    let mut out = vec![Vec::new(); set.num_classes];
    for i in 0..set.len() {
        out[set.labels[i]].push(set.image(i));
    }
    out
}

#[test]
fn an_export_that_cannot_write_says_so_and_names_the_place() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the export's folder should be.
    let blocked = tmp.path().join("blocked");
    std::fs::write(&blocked, "a file").unwrap();
    let set = synthetic(2, 1, 1, 4, 4, 1);
    for e in [
        export_split_files(&blocked, &[("train", &set)]).unwrap_err().to_string(),
        export_class_folders(&blocked, &[("train", &set)], &names(2)).unwrap_err().to_string(),
    ] {
        assert!(e.contains("blocked") && e.contains("cannot write") && !e.contains("cannot read"), "{e}");
    }
}

#[test]
fn both_layouts_read_back_exactly_what_was_written() {
    for (color, c) in [(Color::Grey, 1), (Color::Rgb, 3)] {
        let tmp = tempfile::tempdir().unwrap();
        let (train, test) = (synthetic(3, 4, c, 9, 7, 1), synthetic(3, 2, c, 9, 7, 2));
        let splits = [("train", &train), ("test", &test)];
        export_class_folders(&tmp.path().join("f"), &splits, &names(3)).unwrap();
        export_split_files(&tmp.path().join("s"), &splits).unwrap();
        for (root, layout) in [("f", folders("train", "test", None)), ("s", split_files(false, None))] {
            let read = files(layout, color, (9, 7), ImageCache::Off).read(&tmp.path().join(root)).unwrap();
            assert_eq!(by_class(&read.train), by_class(&train), "{root} {color:?}");
            assert_eq!(by_class(&read.test), by_class(&test), "{root} {color:?}");
            assert_eq!((read.train.channels, read.train.height, read.train.width), (c, 9, 7));
            assert!(read.val.is_none());
            let expected: Vec<String> = if root == "f" {
                vec!["0-class 0".into(), "1-class 1".into(), "2-class 2".into()]
            } else {
                vec!["0".into(), "1".into(), "2".into()]
            };
            assert_eq!(read.class_names, expected);
        }
    }
}

/// An IDX data set and the same images as a PNG folder give the same long-tailed subset,
/// validation and test images, and (with the built-in normalisation) the same format.
#[test]
fn a_png_folder_of_a_builtin_set_prepares_like_the_builtin_set() {
    let tmp = tempfile::tempdir().unwrap();
    let idx = tmp.path().join("idx");
    write_idx_dataset(&idx, 30, 10, false);
    let (train, test) = DatasetName::Mnist.read(&idx).unwrap();
    let png = tmp.path().join("png");
    export_class_folders(&png, &[("train", &train), ("test", &test)], &DatasetName::Mnist.class_names()).unwrap();
    let (mean, std) = DatasetName::Mnist.normalization();
    let spec = |source, path: &Path| DatasetSpec {
        normalization: Normalization::Given { mean: mean.clone(), std: std.clone() },
        imbalance: exponential(10.0),
        max_per_class: Some(20),
        selection: Selection::SeededShuffle,
        data_seed: 3,
        eval_split: EvalSplit::ValFromTest { val_fraction: 0.2 },
        ..spec(source, path)
    };
    let images = files(folders("train", "test", None), Color::Grey, (28, 28), ImageCache::Off);
    let a = spec(DataSource::Builtin(DatasetName::Mnist), &idx).prepare().unwrap();
    let b = spec(DataSource::Images(Box::new(images)), &png).prepare().unwrap();
    for (x, y) in [(&a.train, &b.train), (&a.val, &b.val), (&a.test, &b.test)] {
        assert_eq!(by_class(x), by_class(y));
    }
    assert_eq!(a.manifest.train_counts, b.manifest.train_counts);
    assert_eq!(
        (a.manifest.format.mean.clone(), a.manifest.format.std.clone()),
        (b.manifest.format.mean, b.manifest.format.std)
    );
    assert_eq!(b.manifest.dataset, "Mine");
    assert_eq!(b.manifest.format.class_names[3], "3-3");
}

#[test]
fn normalisation_from_train_is_computed_on_the_long_tailed_subset() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (synthetic(3, 10, 3, 6, 6, 5), synthetic(3, 4, 3, 6, 6, 6));
    export_class_folders(tmp.path(), &[("train", &train), ("test", &test)], &names(3)).unwrap();
    let source =
        DataSource::Images(Box::new(files(folders("train", "test", None), Color::Rgb, (6, 6), ImageCache::Off)));
    let spec = DatasetSpec { imbalance: exponential(5.0), ..spec(source, tmp.path()) };
    let data = spec.prepare().unwrap();
    assert_eq!(data.manifest.train_counts, vec![10, 4, 2]);
    let (mean, std) = channel_statistics(&data.train);
    assert_eq!((data.manifest.format.mean.clone(), data.manifest.format.std.clone()), (mean.clone(), std.clone()));
    // By hand for channel 0: population mean and std of every pixel / 255.
    let px: Vec<f64> = (0..data.train.len())
        .flat_map(|i| data.train.image(i)[..36].iter().map(|&p| p as f64 / 255.0).collect::<Vec<_>>())
        .collect();
    let m = px.iter().sum::<f64>() / px.len() as f64;
    let s = (px.iter().map(|p| (p - m) * (p - m)).sum::<f64>() / px.len() as f64).sqrt();
    assert!((mean[0] as f64 - m).abs() < 1e-6 && (std[0] as f64 - s).abs() < 1e-6, "{mean:?} {std:?} vs {m} {s}");
    // The full training set has another mean: the statistics are the subset's.
    assert_ne!(channel_statistics(&train).0, mean);
}

#[test]
fn validation_from_a_val_folder_or_carved_from_train() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, val, test) = (synthetic(2, 10, 1, 5, 5, 7), synthetic(2, 3, 1, 5, 5, 8), synthetic(2, 4, 1, 5, 5, 9));
    export_class_folders(tmp.path(), &[("train", &train), ("val", &val), ("test", &test)], &names(2)).unwrap();
    let spec = |eval_split, with_val| {
        let source = DataSource::Images(Box::new(files(
            folders("train", "test", with_val),
            Color::Grey,
            (5, 5),
            ImageCache::Off,
        )));
        let imbalance = Imbalance::Cut { profile: ImbalanceProfile::Balanced, ratio: 1.0 };
        DatasetSpec { imbalance, eval_split, ..spec(source, tmp.path()) }
    };
    let own = spec(EvalSplit::ValSplit, Some("val")).prepare().unwrap();
    assert_eq!(by_class(&own.val), by_class(&val));
    assert_eq!(by_class(&own.test), by_class(&test));
    assert_eq!(own.train.len(), 20);
    assert!(!own.manifest.selected_on_test);

    let carved = spec(EvalSplit::ValFromTrain { val_fraction: 0.3 }, None).prepare().unwrap();
    // Per class the first 3 of 10 training images validate; the other 7 train.
    let t = by_class(&train);
    assert_eq!(by_class(&carved.val), vec![t[0][..3].to_vec(), t[1][..3].to_vec()]);
    assert_eq!(by_class(&carved.train), vec![t[0][3..].to_vec(), t[1][3..].to_vec()]);
    assert_eq!(by_class(&carved.test), by_class(&test));

    let e = spec(EvalSplit::ValSplit, None).prepare().unwrap_err().to_string();
    assert!(e.contains("ValSplit") && e.contains("no validation split"), "{e}");
}

#[test]
fn split_files_with_names_comments_and_a_stripped_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let set = synthetic(2, 2, 1, 4, 4, 11);
    export_split_files(tmp.path(), &[("all", &set)]).unwrap();
    // The reference's CelebA-5 files list absolute paths from the authors' machine.
    let line = |i: usize, label: &str| format!("/home/someone/data/images/all/{i:05}.png {label}\n");
    let train = format!("# path label\n\n{}{}{}{}", line(0, "cat"), line(1, "dog"), line(2, "cat"), line(3, "1"));
    std::fs::write(tmp.path().join("train.txt"), train).unwrap();
    std::fs::write(tmp.path().join("test.txt"), format!("{}{}", line(1, "dog"), line(0, "0"))).unwrap();
    let mut f = files(split_files(false, Some("/home/someone/data")), Color::Grey, (4, 4), ImageCache::Off);
    f.classes = ClassList::Listed(vec!["cat".into(), "dog".into()]);
    let read = f.read(tmp.path()).unwrap();
    assert_eq!(read.train.labels, vec![0, 1, 0, 1]);
    assert_eq!(read.test.labels, vec![1, 0]);
    assert_eq!(read.train.image(1), set.image(1));
    assert_eq!(read.class_names, vec!["cat", "dog"]);
    // Sorted classes from names: the distinct labels, sorted.
    std::fs::write(tmp.path().join("train.txt"), format!("{}{}", line(0, "zebra"), line(1, "ant"))).unwrap();
    std::fs::write(tmp.path().join("test.txt"), format!("{}{}", line(2, "ant"), line(3, "zebra"))).unwrap();
    f.classes = ClassList::Sorted;
    let read = f.read(tmp.path()).unwrap();
    assert_eq!(
        (read.class_names.clone(), read.train.labels.clone()),
        (vec!["ant".to_string(), "zebra".into()], vec![1, 0])
    );
}

#[test]
fn images_of_other_sizes_are_resized_or_cropped_as_the_recipe_says() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("train").join("a");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(tmp.path().join("test").join("a")).unwrap();
    std::fs::create_dir_all(tmp.path().join("train").join("b")).unwrap();
    std::fs::create_dir_all(tmp.path().join("test").join("b")).unwrap();
    // 12x8 (w x h): pixel value = 10 * x + y, so a crop is recognisable.
    let img = image::GrayImage::from_fn(12, 8, |x, y| image::Luma([(10 * x + y) as u8]));
    for split in ["train", "test"] {
        for class in ["a", "b"] {
            img.save(tmp.path().join(split).join(class).join("x.png")).unwrap();
        }
    }
    // A second training image of another size.
    image::GrayImage::from_pixel(6, 6, image::Luma([50])).save(tmp.path().join("train/b/y.png")).unwrap();
    let read = |fit, (h, w)| {
        let mut f = files(folders("train", "test", None), Color::Grey, (h, w), ImageCache::Off);
        f.fit = fit;
        f.read(tmp.path())
    };
    let e = read(Fit::Exact, (8, 12)).unwrap_err().to_string();
    assert!(e.contains("y.png") && e.contains("6x6") && e.contains("fit: Resize"), "{e}");
    let crop = read(Fit::CenterCrop, (7, 4)).unwrap_err().to_string();
    assert!(crop.contains("y.png") && crop.contains("smaller"), "{crop}");
    let crop = read(Fit::CenterCrop, (2, 4)).unwrap();
    // The centre 4x2 of 12x8: x in 4..8, y in 3..5.
    assert_eq!(crop.train.image(0), &[43, 53, 63, 73, 44, 54, 64, 74]);
    assert_eq!(crop.train.image(2), &[50; 8]);
    let resized = read(Fit::Resize, (4, 6)).unwrap();
    assert_eq!((resized.train.height, resized.train.width, resized.train.len()), (4, 6, 3));
    assert_eq!(resized.train.image(2), &[50; 24], "a flat image stays flat");
    let rc = read(Fit::ResizeCenterCrop, (4, 4)).unwrap();
    assert_eq!(rc.train.image_len(), 16);
}

#[test]
fn jpeg_and_rgb_to_grey_conversion() {
    let tmp = tempfile::tempdir().unwrap();
    for split in ["train", "test"] {
        for (class, v) in [("a", 40u8), ("b", 200u8)] {
            let d = tmp.path().join(split).join(class);
            std::fs::create_dir_all(&d).unwrap();
            image::RgbImage::from_pixel(8, 8, image::Rgb([v, v, v])).save(d.join("p.JPG")).unwrap();
        }
    }
    let read = files(folders("train", "test", None), Color::Grey, (8, 8), ImageCache::Off).read(tmp.path()).unwrap();
    assert_eq!(read.train.len(), 2);
    assert!(
        read.train.image(0).iter().all(|&p| p.abs_diff(40) <= 2)
            && read.train.image(1).iter().all(|&p| p.abs_diff(200) <= 2)
    );
}

#[test]
fn the_cache_is_used_then_invalidated_by_an_edited_image_and_survives_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (synthetic(2, 3, 1, 4, 4, 12), synthetic(2, 2, 1, 4, 4, 13));
    let root = tmp.path().join("data");
    export_class_folders(&root, &[("train", &train), ("test", &test)], &names(2)).unwrap();
    let cache = tmp.path().join("cache");
    let f = files(folders("train", "test", None), Color::Grey, (4, 4), ImageCache::Folder(cache.clone()));
    let first = f.read(&root).unwrap();
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(cached.len(), 2, "one file per split");
    // Read again: from the cache, identical.
    assert_eq!(by_class(&f.read(&root).unwrap().train), by_class(&first.train));
    // A damaged cache file is decoded again, with the same result.
    for c in &cached {
        std::fs::write(c, b"M2MIMGS1 garbage").unwrap();
    }
    assert_eq!(by_class(&f.read(&root).unwrap().train), by_class(&first.train));
    // An edited image changes the key: the new pixels are read, not the cached ones.
    let edited = root.join("train/0-class 0/00000.png");
    std::thread::sleep(std::time::Duration::from_millis(20));
    image::GrayImage::from_pixel(4, 4, image::Luma([7])).save(&edited).unwrap();
    let again = f.read(&root).unwrap();
    assert_eq!(by_class(&again.train)[0][0], &[7; 16]);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 3, "a new train entry beside the old ones");
}

/// Every kind of bad input is an error that names the file, class or line.
#[test]
fn bad_images_and_layouts_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, test) = (synthetic(2, 3, 1, 4, 4, 14), synthetic(2, 2, 1, 4, 4, 15));
    let good = tmp.path().join("good");
    export_class_folders(&good, &[("train", &train), ("test", &test)], &names(2)).unwrap();
    let case = |name: &str, edit: &dyn Fn(&Path)| -> String {
        let dir = tmp.path().join(name);
        copy_dir(&good, &dir);
        edit(&dir);
        let f = files(folders("train", "test", None), Color::Grey, (4, 4), ImageCache::Off);
        f.read(&dir).map(|_| ()).expect_err(name).to_string()
    };
    let e = case("corrupt", &|d| std::fs::write(d.join("train/1-class 1/00001.png"), b"not a png").unwrap());
    assert!(e.contains("00001.png") && e.contains("not a readable PNG/JPEG image"), "{e}");
    let e = case("truncated", &|d| {
        let p = d.join("test/0-class 0/00000.png");
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    });
    assert!(e.contains("test/0-class 0/00000.png"), "{e}");
    let e = case("many", &|d| {
        for i in [0, 2, 4] {
            std::fs::write(d.join(format!("train/0-class 0/{i:05}.png")), b"x").unwrap();
        }
    });
    assert!(e.starts_with("3 of 6 images") && e.contains("00004.png"), "{e}");
    let e = case("empty class", &|d| {
        for entry in std::fs::read_dir(d.join("train/1-class 1")).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
    });
    assert!(e.contains("class `1-class 1` has no images") && e.contains("train split"), "{e}");
    let e = case("extra class", &|d| copy_dir(&d.join("test/1-class 1"), &d.join("test/2-class 2")));
    assert!(e.contains("folder `2-class 2` is not one of the 2 classes"), "{e}");
    let e = case("missing class", &|d| std::fs::remove_dir_all(d.join("test/1-class 1")).unwrap());
    assert!(e.contains("class `1-class 1` has no folder"), "{e}");
    let e = case("stray", &|d| {
        std::fs::copy(d.join("train/1-class 1/00001.png"), d.join("train/loose.png")).map(|_| ()).unwrap()
    });
    assert!(e.contains("outside a class folder") && e.contains("loose.png"), "{e}");
    let e = case("empty", &|d| {
        std::fs::remove_dir_all(d.join("train")).unwrap();
        std::fs::create_dir_all(d.join("train")).unwrap();
    });
    assert!(e.contains("no class folders"), "{e}");
    let e = case("no train", &|d| std::fs::remove_dir_all(d.join("train")).unwrap());
    assert!(e.contains("train") && e.contains("cannot read"), "{e}");
    // Non-image files beside the images are ignored.
    std::fs::write(good.join("train/0-class 0/notes.txt"), "x").unwrap();
    assert!(files(folders("train", "test", None), Color::Grey, (4, 4), ImageCache::Off).read(&good).is_ok());
    // Listed classes must exist as folders.
    let mut f = files(folders("train", "test", None), Color::Grey, (4, 4), ImageCache::Off);
    f.classes = ClassList::Listed(vec!["0-class 0".into(), "cats".into()]);
    let e = f.read(&good).unwrap_err().to_string();
    assert!(e.contains("folder `1-class 1` is not one of the 2 classes"), "{e}");
    // A missing root.
    let e = f.read(&tmp.path().join("nowhere")).unwrap_err().to_string();
    assert!(e.contains("nowhere") && e.contains("dataset.path"), "{e}");
}

#[test]
fn bad_split_files_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let set = synthetic(2, 2, 1, 4, 4, 16);
    export_split_files(tmp.path(), &[("train", &set), ("test", &set)]).unwrap();
    let f = files(split_files(false, None), Color::Grey, (4, 4), ImageCache::Off);
    let with_test = |text: &str| {
        std::fs::write(tmp.path().join("test.txt"), text).unwrap();
        f.read(tmp.path()).map(|_| ()).unwrap_err().to_string()
    };
    let e = with_test("images/test/00000.png 0\nimages/test/00001.png 7\n");
    assert!(
        e.contains("test.txt") && e.contains("line 2") && e.contains("label `7` is not one of the 2 classes"),
        "{e}"
    );
    let e = with_test("images/test/00000.png 0\njustonefield\n");
    assert!(e.contains("test.txt") && e.contains("line 2") && e.contains("expected `path label`"), "{e}");
    let e = with_test("images/test/00000.png 0\nimages/test/00002.png 0\n");
    assert!(e.contains("class 1 (`1`) has no images in the test split"), "{e}");
    let e = with_test("images/test/00000.png 0\nimages/test/missing.png 1\n");
    assert!(e.contains("missing.png") && e.contains("cannot open"), "{e}");
    let e = with_test("# only a comment\n");
    assert!(e.contains("test.txt") && e.contains("lists no images"), "{e}");
    std::fs::remove_file(tmp.path().join("test.txt")).unwrap();
    let e = f.read(tmp.path()).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("test.txt") && e.contains("cannot read"), "{e}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let p = entry.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

fn recipe_error(tmp: &Path, dataset: &str) -> String {
    let p = tmp.join("r.ron");
    let text = format!(
        "(name: \"r\", dataset: ({dataset} imbalance: Exponential, ratio: 10.0, selection: FirstInOrder, data_seed: 0,
          eval_split: ValFromTest(val_fraction: 0.1), augmentation: (crop_padding: 0, horizontal_flip: false)),
          model: (architecture: SmallCnn), optimizer: (lr: 0.1, momentum: 0.9, weight_decay: 0.0),
          schedule: (epochs: 2), batch_size: 8, seed: 0)"
    );
    std::fs::write(&p, text).unwrap();
    match load_recipe(&p, &[]) {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn recipe_checks_of_the_images_section() {
    let tmp = tempfile::tempdir().unwrap();
    let images = |extra: &str| {
        format!("images: (name: \"Mine\", layout: ClassFolders(train: \"train\", test: \"test\"), color: Rgb, size: (height: 8, width: 8){extra}), path: \"x\",")
    };
    assert_eq!(recipe_error(tmp.path(), &images("")), "ok");
    let cases = [
        (format!("name: Mnist, {}", images("")), "dataset.images", "not both"),
        (images("").replace("path: \"x\",", ""), "dataset.path", "missing"),
        (images(", fit: Stretch"), "Stretch", ""),
        (images("").replace("\"Mine\"", "\"my data\""), "dataset.images.name", "letters"),
        (
            images("").replace("size: (height: 8, width: 8)", "size: (height: 0, width: 8)"),
            "dataset.images.size",
            "1..=4096",
        ),
        (images(", classes: Listed([\"a\", \"a\"])"), "dataset.images.classes", "appears twice"),
        (format!("{} normalization: Standard,", images("")), "dataset.normalization", "built-in"),
        (format!("{} normalization: Given(mean: [0.5], std: [0.2]),", images("")), "dataset.normalization", "3 mean"),
        (
            format!("{} normalization: Given(mean: [0.5, 0.5, 0.5], std: [0.2, 0.0, 0.2]),", images("")),
            "dataset.normalization",
            "> 0",
        ),
        (images("").replace("color: Rgb, ", ""), "dataset.images.color", "missing"),
        (String::new(), "dataset.name", "missing"),
    ];
    for (dataset, field, reason) in cases {
        let e = recipe_error(tmp.path(), &dataset);
        assert!(e.contains(field) && e.contains(reason), "{dataset}: {e}");
    }
    assert_eq!(recipe_error(tmp.path(), &images("")), "ok");
    let p = tmp.path().join("v.ron");
    std::fs::write(
        &p,
        std::fs::read_to_string(tmp.path().join("r.ron"))
            .unwrap()
            .replace("ValFromTest(val_fraction: 0.1)", "ValSplit"),
    )
    .unwrap();
    let e = load_recipe(&p, &[]).unwrap_err().to_string();
    assert!(e.contains("dataset.eval_split") && e.contains("ValSplit"), "{e}");
    // With a val folder it checks; a built-in set may not ask for ValSplit.
    let with_val = std::fs::read_to_string(&p).unwrap().replace("test: \"test\")", "test: \"test\", val: \"val\")");
    std::fs::write(&p, with_val).unwrap();
    assert!(load_recipe(&p, &[]).is_ok());
}

#[test]
fn a_suite_runs_a_builtin_set_and_an_image_folder_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("base.ron"), m2m_tests::tiny_suite_base(&tmp.path().join("mnist"), 2)).unwrap();
    let suite = tmp.path().join("s.ron");
    std::fs::write(
        &suite,
        format!(
            r#"(name: "mixed", base: "base.ron", output_dir: "{}", methods: [(name: "ERM")], seeds: [0],
                datasets: [(), (images: (name: "Mine", layout: ClassFolders(train: "train", test: "test"), color: Grey,
                                          size: (height: 28, width: 28)), path: "{}")])"#,
            tmp.path().join("out").display(),
            tmp.path().join("png").display()
        ),
    )
    .unwrap();
    let s = m2m_burn_plugin::suite::load_suite(&suite, None).unwrap();
    let names: Vec<String> = s.cells.iter().map(|c| c.recipe.name.clone()).collect();
    assert_eq!(names, vec!["ERM.Mnist.r4.d3.s0", "ERM.Mine.r4.d3.s0"]);
    assert!(matches!(s.cells[1].recipe.dataset.source, DataSource::Images(_)));
    assert_eq!(s.cells[1].recipe.dataset.normalization, Normalization::FromTrain);
    assert_eq!(s.cells[0].recipe.dataset.normalization, Normalization::Standard);
}

/// A folder that is already long-tailed (split files, as the M2m reference's CelebA-5
/// lists): `imbalance: AsIs` keeps its own class counts (each capped at
/// `max_per_class`), trains with them, refuses a ratio, and in a suite forms one column
/// whose title shows the measured ratio.
#[test]
fn as_is_trains_a_split_file_folder_with_its_own_counts() {
    let tmp = tempfile::tempdir().unwrap();
    // 30, 6 and 12 training images of three classes; 10 test images each.
    let all = synthetic(3, 30, 1, 28, 28, 21);
    let keep: Vec<usize> = (0..all.len()).filter(|&i| [30, 6, 12][all.labels[i]] > i / 3).collect();
    let train = all.select(&keep);
    let test = synthetic(3, 10, 1, 28, 28, 22);
    let dir = tmp.path().join("own");
    export_split_files(&dir, &[("train", &train), ("test", &test)]).unwrap();
    let source = DataSource::Images(Box::new(files(split_files(false, None), Color::Grey, (28, 28), ImageCache::Off)));
    let as_is = DatasetSpec { imbalance: Imbalance::AsIs, ..spec(source.clone(), &dir) };
    let data = as_is.prepare().unwrap();
    assert_eq!(data.manifest.train_counts, vec![30, 6, 12]);
    assert_eq!((data.manifest.imbalance_factor, data.train.len()), (5.0, 48));
    // A cap above some classes' counts cuts only the larger ones.
    let capped = DatasetSpec { max_per_class: Some(10), ..as_is.clone() }.prepare().unwrap();
    assert_eq!(capped.manifest.train_counts, vec![10, 6, 10]);
    // Through a recipe: no ratio allowed, and a real (one-epoch) run on the own counts.
    let recipe = |extra: &str| {
        let p = tmp.path().join("as-is.ron");
        std::fs::write(
            &p,
            format!(
                r#"(name: "as-is", output_dir: "{}", dataset: (
                    images: (name: "Own", layout: SplitFiles(train: "train.txt", test: "test.txt"), color: Grey,
                             size: (height: 28, width: 28), cache: Off),
                    path: "{}", imbalance: AsIs, {extra} selection: FirstInOrder, data_seed: 0,
                    eval_split: ValFromTest(val_fraction: 0.2), augmentation: (crop_padding: 2, horizontal_flip: false)),
                  model: (architecture: SmallCnn), optimizer: (lr: 0.05, momentum: 0.9, weight_decay: 5e-4),
                  schedule: (epochs: 1, milestones: []), batch_size: 16, seed: 0)"#,
                tmp.path().join("runs").display(),
                dir.display()
            ),
        )
        .unwrap();
        load_recipe(&p, &[])
    };
    let e = recipe("ratio: 10.0,").unwrap_err().to_string();
    assert!(e.contains("dataset.ratio") && e.contains("AsIs"), "{e}");
    let r = recipe("").unwrap();
    let outcome = m2m_burn_plugin::run::run_recipe::<m2m_burn_plugin::backend::Cpu>(
        &r,
        Default::default(),
        m2m_burn_plugin::run::ProgressView::Log,
    )
    .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(outcome.run_dir.join("data-manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["train_counts"], serde_json::json!([30, 6, 12]));

    // In a suite beside a built-in set: the ratio axis applies to the built-in set only.
    std::fs::write(tmp.path().join("base.ron"), m2m_tests::tiny_suite_base(&tmp.path().join("mnist"), 1)).unwrap();
    write_idx_dataset(&tmp.path().join("mnist"), 10, 10, false);
    let suite = tmp.path().join("s.ron");
    std::fs::write(
        &suite,
        format!(
            r#"(name: "own", base: "base.ron", output_dir: "{}", methods: [(name: "ERM")], seeds: [0], ratios: [2.0, 4.0],
                datasets: [(), (images: (name: "Own", layout: SplitFiles(train: "train.txt", test: "test.txt"),
                                          color: Grey, size: (height: 28, width: 28), cache: Off),
                                path: "{}", imbalance: AsIs, normalization: FromTrain)])"#,
            tmp.path().join("out").display(),
            dir.display()
        ),
    )
    .unwrap();
    let s = m2m_burn_plugin::suite::load_suite(&suite, None).unwrap();
    let names: Vec<String> = s.cells.iter().map(|c| c.recipe.name.clone()).collect();
    assert_eq!(names, vec!["ERM.Mnist.r2.d3.s0", "ERM.Mnist.r4.d3.s0", "ERM.Own.rAsIs.d3.s0"]);
    assert_eq!(s.cells[2].recipe.dataset.imbalance, Imbalance::AsIs);
    let out = m2m_burn_plugin::suite::run_suite::<m2m_burn_plugin::backend::Cpu>(
        &s,
        m2m_burn_plugin::suite::Shard::ALL,
        Default::default(),
        m2m_burn_plugin::run::ProgressView::Log,
    )
    .unwrap();
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    let report = m2m_burn_plugin::suite::collect(std::slice::from_ref(&s.output_dir)).unwrap();
    let table = m2m_burn_plugin::suite::balanced_accuracy_table(&report);
    assert!(table.contains("Mnist ρ=2") && table.contains("Own as is (ρ=5.0)"), "{table}");
    let csv = m2m_burn_plugin::suite::csv(&report).unwrap();
    assert!(csv.contains("own,ERM,Own,5,bacc,"), "{csv}");
    // A suite of AsIs sets only takes no ratios.
    let only = tmp.path().join("only.ron");
    std::fs::write(&only, std::fs::read_to_string(&suite).unwrap().replace("datasets: [(), ", "datasets: [")).unwrap();
    let e = m2m_burn_plugin::suite::load_suite(&only, None).unwrap_err().to_string();
    assert!(e.contains("ratios") && e.contains("AsIs"), "{e}");
}
