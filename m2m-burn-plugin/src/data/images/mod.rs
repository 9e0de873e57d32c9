//! Users' own images: a root folder with one subfolder per class, or split files listing
//! `path label` lines (the layout of the M2m reference's CelebA-5 files), decoded with the
//! `image` crate (PNG, JPEG; greyscale or RGB), fitted to the size the recipe states and
//! cached in a compact file so that only the first run pays for decoding.
//!
//! One bad image stops the run: skipping it would silently change the class counts the
//! long-tailed subset is cut from. The error names every bad file (the first ones in full).

mod cache;
mod decode;
mod export;
mod layout;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use cache::ImageCache;
pub(crate) use decode::channel_major;
pub use export::{export_class_folders, export_split_files};
pub use layout::ClassList;

use super::{DataError, ImageSet, SourceSplits};

/// Greyscale (1 channel) or RGB (3 channels); images of the other kind are converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Color {
    /// One channel; RGB images are converted with the `image` crate's luma weights.
    Grey,
    /// Three channels (red, green, blue); greyscale images are replicated.
    Rgb,
}

impl Color {
    /// Number of channels: 1 for `Grey`, 3 for `Rgb`.
    pub fn channels(self) -> usize {
        match self {
            Color::Grey => 1,
            Color::Rgb => 3,
        }
    }
}

/// The size every image is brought to (pixels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageSize {
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

/// How an image of another size is brought to [`ImageSize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fit {
    /// Every image must already have the size (mixed sizes are an error).
    Exact,
    /// Scaled to the size, aspect ratio not kept (bilinear, antialiased when shrinking).
    Resize,
    /// The central region of the size cut out; smaller images are an error.
    CenterCrop,
    /// Scaled so the shorter side fits, then the central region cut out (torchvision's
    /// `Resize(min) + CenterCrop`).
    ResizeCenterCrop,
}

/// Where the images of each split are listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ImageLayout {
    /// `root/<train>/<class>/*.png|jpg`, the same for `test` and the optional `val`.
    ClassFolders {
        /// The training split's folder, relative to the root.
        train: PathBuf,
        /// The test split's folder, relative to the root.
        test: PathBuf,
        /// The validation split's folder, relative to the root, if the data set has one
        /// (default `None`).
        #[serde(default)]
        val: Option<PathBuf>,
    },
    /// Text files with one `path label` line per image (`#` starts a comment line); paths
    /// relative to the root, labels a class index or a name from `classes`. Listed paths
    /// that start with `strip_prefix` are taken relative to the root instead (the
    /// reference's CelebA-5 files list `/home/jaehyung/data/CelebA/image64/...`).
    SplitFiles {
        /// The training split's file, relative to the root.
        train: PathBuf,
        /// The test split's file, relative to the root.
        test: PathBuf,
        /// The validation split's file, relative to the root, if the data set has one
        /// (default `None`).
        #[serde(default)]
        val: Option<PathBuf>,
        /// A prefix of the listed paths to replace by the root (default `None`: paths are
        /// taken as listed, relative to the root unless absolute).
        #[serde(default)]
        strip_prefix: Option<String>,
    },
}

impl ImageLayout {
    /// Whether the layout names a validation split of its own.
    pub fn has_val(&self) -> bool {
        match self {
            ImageLayout::ClassFolders { val, .. } | ImageLayout::SplitFiles { val, .. } => val.is_some(),
        }
    }
}

/// A checked image-file data set (recipe field `dataset.images`, root in `dataset.path`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFiles {
    /// The data set's name in run names, logs and reports.
    pub name: String,
    /// Where the images of each split are listed.
    pub layout: ImageLayout,
    /// The classes in label order: sorted from the files, or listed in the recipe.
    pub classes: ClassList,
    /// The colour every image is converted to (and so the model's input channels).
    pub color: Color,
    /// The size every image is brought to.
    pub size: ImageSize,
    /// How images of another size are brought to `size`.
    pub fit: Fit,
    /// Where decoded splits are cached.
    pub cache: ImageCache,
}

impl ImageFiles {
    /// Lists, decodes (or reads from the cache) and fits every split under `root`.
    pub fn read(&self, root: &Path) -> Result<SourceSplits, DataError> {
        if !root.is_dir() {
            return Err(DataError::NotFound {
                dataset: self.name.clone(),
                searched: format!("dataset.path = {}", root.display()),
                hint: "dataset.path must be the folder that holds the images (or the split files' paths)".into(),
            });
        }
        let listing = layout::list(root, &self.layout, &self.classes)?;
        let classes = listing.class_names.len();
        let read_split = |split: &layout::SplitListing| -> Result<ImageSet, DataError> {
            let pixels = cache::decode_cached(self, split)?;
            ImageSet::new(
                self.color.channels(),
                self.size.height,
                self.size.width,
                classes,
                pixels,
                split.labels.clone(),
            )
        };
        Ok(SourceSplits {
            train: read_split(&listing.train)?,
            val: listing.val.as_ref().map(read_split).transpose()?,
            test: read_split(&listing.test)?,
            class_names: listing.class_names,
        })
    }
}
