//! Published numbers for the report's reference column (algorithm.md §7.2). They are
//! printed as published, never mixed with measured values, with their source: the
//! LDAM-DRW paper's Table 2 (top-1 error on the full, balanced CIFAR test set, read from
//! the paper's text), and the M2m paper's Table 2, whose text could not be read here: its
//! numbers are labelled unverified, one of them with the reproduction that quotes it.

use crate::data::DatasetName;

/// A published balanced accuracy (in %) and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// The published value, in % (for LDAM-DRW's table, 100 minus the published error).
    pub balanced_accuracy: f64,
    /// Where the value comes from (paper, table and protocol), printed beside it.
    pub source: &'static str,
}

const LDAM: &str =
    "LDAM-DRW paper (arXiv:1906.07413v2) Table 2, long-tailed columns: 100 - top-1 error on the full test set";
const M2M_QUOTED: &str =
    "M2m paper, unverified (its text not read here); quoted as 78.3 ± 0.16 by the ReScience C reproduction \
                          (doi:10.5281/zenodo.8173763, Table 7)";
const M2M_RECALLED: &str =
    "M2m paper Table 2 as recalled; unverified: no source text could be read (docs/algorithm.md §7.2)";

/// The published value for a method name as our suites spell it, on exponential
/// long-tailed CIFAR at ratio `ratio`, when docs/algorithm.md §7.2 lists one.
pub fn published(method: &str, dataset: &str, ratio: f64) -> Option<Published> {
    let p = |v: f64, source| Some(Published { balanced_accuracy: v, source });
    // The papers report these two ratios only.
    let rho = if ratio == 100.0 {
        100
    } else if ratio == 10.0 {
        10
    } else {
        return None;
    };
    match (method, DatasetName::from_label(dataset)?, rho) {
        ("ERM", DatasetName::Cifar10, 100) => p(100.0 - 29.64, LDAM),
        ("ERM", DatasetName::Cifar10, 10) => p(100.0 - 13.61, LDAM),
        ("ERM", DatasetName::Cifar100, 100) => p(100.0 - 61.68, LDAM),
        ("CB-RW", DatasetName::Cifar10, 100) => p(100.0 - 27.63, LDAM),
        ("LDAM-DRW", DatasetName::Cifar10, 100) => p(100.0 - 22.97, LDAM),
        ("LDAM-DRW", DatasetName::Cifar10, 10) => p(100.0 - 11.84, LDAM),
        ("LDAM-DRW", DatasetName::Cifar100, 100) => p(100.0 - 57.96, LDAM),
        ("M2m", DatasetName::Cifar10, 100) => p(78.3, M2M_QUOTED),
        ("M2m", DatasetName::Cifar100, 100) => p(42.9, M2M_RECALLED),
        ("M2m+LDAM-DRW", DatasetName::Cifar10, 100) => p(79.1, M2M_RECALLED),
        ("M2m+LDAM-DRW", DatasetName::Cifar100, 100) => p(43.5, M2M_RECALLED),
        _ => None,
    }
}
