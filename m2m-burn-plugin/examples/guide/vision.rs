//! A stand-in for MNIST from `burn::data::dataset::vision` (burn's `vision` feature, whose
//! `MnistDataset` downloads at run time): the same `MnistItem` and `MnistDataset::train()`
//! and `test()`, serving long-tailed Fashion-MNIST from local IDX files, as
//! [`use_fashion_mnist_lt`] chose. The guide's files use it where burn's guide imports
//! burn's.

use std::sync::{Arc, Mutex};

use burn::data::dataset::Dataset;

/// burn's `MnistItem`: pixels 0..255 and the label.
#[derive(Clone, Debug)]
pub struct MnistItem {
    pub image: [[f32; 28]; 28],
    pub label: u8,
}

/// The training or the test split chosen by [`use_fashion_mnist_lt`].
pub struct MnistDataset(Arc<Vec<MnistItem>>);

type Splits = (Arc<Vec<MnistItem>>, Arc<Vec<MnistItem>>);
static SPLITS: Mutex<Option<Splits>> = Mutex::new(None);

impl MnistDataset {
    pub fn train() -> Self {
        Self(splits().0)
    }
    pub fn test() -> Self {
        Self(splits().1)
    }
}

fn splits() -> Splits {
    let chosen = SPLITS.lock().unwrap_or_else(|p| p.into_inner());
    chosen.clone().expect("vision::use_fashion_mnist_lt chooses the data first")
}

impl Dataset<MnistItem> for MnistDataset {
    fn get(&self, index: usize) -> Option<MnistItem> {
        self.0.get(index).cloned()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Serves Fashion-MNIST from the IDX files in `dir`: for training, the first
/// `max_per_class * ratio^(-k/9)` images of class k (imbalance `ratio`); for testing,
/// `test_per_class` images of every class. Returns the two sizes.
pub fn use_fashion_mnist_lt(
    dir: &std::path::Path,
    max_per_class: usize,
    ratio: f64,
    test_per_class: usize,
) -> anyhow::Result<(usize, usize)> {
    use m2m_core::imbalance::{class_counts, ImbalanceProfile};
    let counts = class_counts(max_per_class, 10, ratio, ImbalanceProfile::Exponential);
    let train = first_of_each(read(dir, "train")?, &counts);
    let test = first_of_each(read(dir, "t10k")?, &[test_per_class; 10]);
    let sizes = (train.len(), test.len());
    *SPLITS.lock().unwrap_or_else(|p| p.into_inner()) = Some((Arc::new(train), Arc::new(test)));
    Ok(sizes)
}

/// The split `prefix` (`train` or `t10k`) of the IDX files in `dir` as burn's items.
fn read(dir: &std::path::Path, prefix: &str) -> anyhow::Result<Vec<MnistItem>> {
    let (images, labels) = (format!("{prefix}-images-idx3-ubyte.gz"), format!("{prefix}-labels-idx1-ubyte.gz"));
    let hint = "Fashion-MNIST (Debian: dataset-fashion-mnist)";
    let set = m2m_burn_plugin::data::idx::read_pair(&dir.join(&images), &dir.join(labels), 10, hint)?;
    anyhow::ensure!((set.height, set.width) == (28, 28), "{images}: {}x{} images, not 28x28", set.height, set.width);
    let item = |i: usize| {
        let mut image = [[0f32; 28]; 28];
        for (r, row) in image.iter_mut().enumerate() {
            for (c, px) in row.iter_mut().enumerate() {
                *px = set.image(i)[r * 28 + c] as f32;
            }
        }
        MnistItem { image, label: set.labels[i] as u8 }
    };
    Ok((0..set.len()).map(item).collect())
}

/// The first `counts[k]` items of each class k, in order.
fn first_of_each(items: Vec<MnistItem>, counts: &[usize]) -> Vec<MnistItem> {
    let mut left = counts.to_vec();
    items
        .into_iter()
        .filter(|it| {
            let n = &mut left[it.label as usize];
            let keep = *n > 0;
            *n = n.saturating_sub(1);
            keep
        })
        .collect()
}
