// burn's guide batcher (examples/guide/src/data.rs at v0.21.0) with M2m's changes,
// marked `// M2m:`. `MnistItem` is burn's (`burn::data::dataset::vision`, the `vision`
// feature); it is copied here, with a reader of local IDX files, because burn's
// `MnistDataset` downloads at run time.
use burn::{data::dataloader::batcher::Batcher, prelude::*};
use m2m_burn_plugin::hook::M2mBatch;

/// burn's `MnistItem`.
#[derive(Clone, Debug)]
pub struct MnistItem {
    pub image: [[f32; 28]; 28],
    pub label: u8,
}

#[derive(Clone, Default)]
pub struct MnistBatcher {}

#[derive(Clone, Debug)]
pub struct MnistBatch<B: Backend> {
    pub images: Tensor<B, 3>,
    pub targets: Tensor<B, 1, Int>,
}

impl<B: Backend> Batcher<B, MnistItem, MnistBatch<B>> for MnistBatcher {
    fn batch(&self, items: Vec<MnistItem>, device: &B::Device) -> MnistBatch<B> {
        let images = items
            .iter()
            .map(|item| TensorData::from(item.image).convert::<B::FloatElem>())
            .map(|data| Tensor::<B, 2>::from_data(data, device))
            .map(|tensor| tensor.reshape([1, 28, 28]))
            // M2m: scale to [0, 1] only; the model normalises.
            .map(|tensor| tensor / 255)
            .collect();

        let targets = items
            .iter()
            .map(|item| Tensor::<B, 1, Int>::from_data([(item.label as i64).elem::<B::IntElem>()], device))
            .collect();

        let images = Tensor::cat(images, 0);
        let targets = Tensor::cat(targets, 0);

        MnistBatch { images, targets }
    }
}

// M2m: where M2m finds the images of a batch, and how it puts translations back.
impl<B: Backend> M2mBatch<B> for MnistBatch<B> {
    fn images(&self) -> Tensor<B, 4> {
        self.images.clone().unsqueeze_dim(1)
    }
    fn with_images(self, images: Tensor<B, 4>) -> Self {
        MnistBatch { images: images.squeeze_dim(1), ..self }
    }
}

/// A long-tailed Fashion-MNIST training set (the first `max_per_class * ratio^(-k/9)`
/// images of class k) and the balanced test set, from local IDX files.
pub fn fashion_mnist_lt(
    dir: &std::path::Path,
    max_per_class: usize,
    ratio: f64,
    test_per_class: usize,
) -> anyhow::Result<(Vec<MnistItem>, Vec<MnistItem>)> {
    use m2m_burn_plugin::data::idx;
    use m2m_core::imbalance::{class_counts, ImbalanceProfile};
    let read = |images: &str, labels: &str| -> anyhow::Result<Vec<MnistItem>> {
        let set =
            idx::read_pair(&dir.join(images), &dir.join(labels), 10, "Fashion-MNIST (Debian: dataset-fashion-mnist)")?;
        anyhow::ensure!(
            (set.height, set.width) == (28, 28),
            "{images}: {}x{} images, not 28x28",
            set.height,
            set.width
        );
        Ok((0..set.len())
            .map(|i| {
                let mut image = [[0f32; 28]; 28];
                for (r, row) in image.iter_mut().enumerate() {
                    for (c, px) in row.iter_mut().enumerate() {
                        *px = set.image(i)[r * 28 + c] as f32; // 0..255, as burn's MnistItem
                    }
                }
                MnistItem { image, label: set.labels[i] as u8 }
            })
            .collect())
    };
    let take = |items: Vec<MnistItem>, counts: &[usize]| {
        let mut left = counts.to_vec();
        items
            .into_iter()
            .filter(|it| {
                let n = &mut left[it.label as usize];
                let keep = *n > 0;
                *n = n.saturating_sub(1);
                keep
            })
            .collect::<Vec<_>>()
    };
    let counts = class_counts(max_per_class, 10, ratio, ImbalanceProfile::Exponential);
    let train = take(read("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")?, &counts);
    let test = take(read("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")?, &[test_per_class; 10]);
    Ok((train, test))
}
