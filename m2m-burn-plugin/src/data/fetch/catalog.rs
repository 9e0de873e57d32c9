//! Where each built-in data set is published: its files, their official addresses (with
//! the mirrors torchvision uses where the original host is unreliable) and the MD5 sums
//! the publishers give.

use crate::data::DatasetName;

/// One file to download: its name, the addresses tried in order, and its published MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// The file's name, as published (also its name in the download folder).
    pub file: String,
    /// The addresses tried in order until one delivers the file with the right MD5.
    pub urls: Vec<String>,
    /// The published MD5, lower-case hex.
    pub md5: String,
}

/// How a data set's downloaded files become the folder its reader expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One gzipped tar archive whose top folder is the data set's folder (CIFAR).
    Tarball,
    /// Gzipped files placed as they are into the data set's folder (the IDX files of
    /// MNIST and Fashion-MNIST, which the reader takes gzipped).
    GzipFiles,
}

/// A data set's files and where they come from. [`Catalog::official`] is the only one
/// `m2m data fetch` uses; tests build their own, pointing at a server on the loopback
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// The data set these files make up.
    pub dataset: DatasetName,
    /// Its files.
    pub archives: Vec<Archive>,
}

const CIFAR_PAGE: &str = "https://www.cs.toronto.edu/~kriz";
// The data set's own repository serves the files over HTTPS; its README's S3 address
// (plain HTTP) is the second choice.
const FASHION_MNIST: [&str; 2] = [
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
];
// LeCun's page often refuses downloads; torchvision tries its S3 copy first.
const MNIST: [&str; 2] = ["https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist"];

const FASHION_MNIST_MD5: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
];
const MNIST_MD5: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
];

impl Catalog {
    /// The official files of `dataset`: CIFAR's binary versions from the Toronto page
    /// (MD5 as published there), the IDX files of MNIST and Fashion-MNIST (MD5 as
    /// published by Fashion-MNIST's README and used by torchvision).
    pub fn official(dataset: DatasetName) -> Catalog {
        let archives = match dataset {
            DatasetName::Cifar10 => vec![Archive {
                file: "cifar-10-binary.tar.gz".into(),
                urls: vec![format!("{CIFAR_PAGE}/cifar-10-binary.tar.gz")],
                md5: "c32a1d4ab5d03f1284b67883e8d87530".into(),
            }],
            DatasetName::Cifar100 => vec![Archive {
                file: "cifar-100-binary.tar.gz".into(),
                urls: vec![format!("{CIFAR_PAGE}/cifar-100-binary.tar.gz")],
                md5: "03b5dce01913d631647c71ecec9e9cb8".into(),
            }],
            DatasetName::FashionMnist => idx_archives(&FASHION_MNIST, &FASHION_MNIST_MD5),
            DatasetName::Mnist => idx_archives(&MNIST, &MNIST_MD5),
        };
        Catalog { dataset, archives }
    }

    /// How this data set's files are installed.
    pub fn layout(&self) -> Layout {
        match self.dataset {
            DatasetName::Cifar10 | DatasetName::Cifar100 => Layout::Tarball,
            DatasetName::FashionMnist | DatasetName::Mnist => Layout::GzipFiles,
        }
    }
}

fn idx_archives(bases: &[&str], files: &[(&str, &str)]) -> Vec<Archive> {
    files
        .iter()
        .map(|(file, md5)| Archive {
            file: file.to_string(),
            urls: bases.iter().map(|b| format!("{b}/{file}")).collect(),
            md5: md5.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_data_set_has_files_with_addresses_and_md5s() {
        for d in [DatasetName::Cifar10, DatasetName::Cifar100, DatasetName::FashionMnist, DatasetName::Mnist] {
            let c = Catalog::official(d);
            assert!(!c.archives.is_empty());
            for a in &c.archives {
                assert_eq!(a.md5.len(), 32, "{}", a.file);
                assert!(a.md5.chars().all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase()));
                assert!(a.urls.iter().all(|u| u.ends_with(&a.file) && u.starts_with("http")), "{:?}", a.urls);
            }
        }
        assert_eq!(Catalog::official(DatasetName::Mnist).archives.len(), 4);
        assert_eq!(Catalog::official(DatasetName::Cifar100).layout(), Layout::Tarball);
    }
}
