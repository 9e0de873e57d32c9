//! `m2m suite --dry-run`'s time per backend: each cell's epochs (ordinary and M2m, from
//! its fork point) times the seconds per training image of a measured epoch of the same
//! network on the same image size and batch size, on that backend. Nothing is guessed: a
//! backend without such a measurement for every cell is "not measured".

use super::prefix::ForkPlan;
use super::spec::Cell;
use crate::model::Architecture;

/// The backends an estimate is given for, by their CLI name.
pub const BACKENDS: [&str; 3] = ["cpu", "cuda", "wgpu"];

/// One measured epoch (training and evaluation) of ERM and of M2m, with where it was
/// measured (docs/benchmarks.md has the commands).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeasuredEpoch {
    /// The backend, by its CLI name.
    pub backend: &'static str,
    /// The network.
    pub architecture: Architecture,
    /// (channels, height, width) of the images.
    pub shape: (usize, usize, usize),
    /// The training batch size.
    pub batch_size: usize,
    /// Training images in the measured epoch.
    pub train_images: usize,
    /// Seconds of an ERM (ordinary) epoch.
    pub plain_seconds: f64,
    /// Seconds of an M2m epoch (translations included).
    pub m2m_seconds: f64,
    /// The machine, the date and the run.
    pub source: &'static str,
}

/// Every measured epoch m2m knows of. GPUs have per-step timings in docs/benchmarks.md,
/// but no measured epoch: they are "not measured".
pub const MEASURED: &[MeasuredEpoch] = &[
    MeasuredEpoch {
        backend: "cpu",
        architecture: Architecture::ResNet32,
        shape: (1, 28, 28),
        batch_size: 128,
        train_images: 12_406,
        plain_seconds: 30.0,
        m2m_seconds: 226.8,
        source: "ResNet-32 epochs on Fashion-MNIST-LT, 2 CPU cores, 2026-12-03, docs/benchmarks.md",
    },
    MeasuredEpoch {
        backend: "cpu",
        architecture: Architecture::SmallCnn,
        shape: (1, 28, 28),
        batch_size: 128,
        train_images: 1_236,
        plain_seconds: 1.25,
        m2m_seconds: 8.04,
        source: "SmallCnn epochs of the quickstart suite, 2 CPU cores, 2026-12-06, docs/benchmarks.md",
    },
];

/// A suite's time on one backend.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// The backend, by its CLI name.
    pub backend: &'static str,
    /// The estimated seconds, or why there is none.
    pub seconds: Result<f64, String>,
    /// The measurements it was scaled from.
    pub sources: Vec<&'static str>,
}

/// Epochs cell `j` trains itself: (ordinary, M2m), from its fork point (or 0); for a
/// search's trial, to its planned end (`Trial::planned_end`).
pub fn trained_epochs(cell: &Cell, plan: Option<ForkPlan>) -> (usize, usize) {
    let epochs = cell.trial.as_ref().map_or(cell.recipe.epochs, |t| t.planned_end.min(cell.recipe.epochs));
    let from = plan.map_or(0, |p| p.epoch).min(epochs);
    let m2m_from = cell.recipe.m2m.as_ref().map_or(epochs, |m| m.from_epoch).clamp(from, epochs);
    (m2m_from - from, epochs - m2m_from)
}

/// The suite's (or a shard's: `cells` picks them) time on each of [`BACKENDS`].
pub fn estimate(all: &[Cell], plans: &[Option<ForkPlan>], cells: &[usize]) -> Vec<Estimate> {
    BACKENDS.iter().map(|&b| estimate_on(b, all, plans, cells)).collect()
}

fn estimate_on(backend: &'static str, all: &[Cell], plans: &[Option<ForkPlan>], cells: &[usize]) -> Estimate {
    let mut seconds = 0.0;
    let mut sources: Vec<&'static str> = Vec::new();
    for &j in cells {
        let cell = &all[j];
        let r = &cell.recipe;
        let shape = r.dataset.source.image_shape();
        let measured = MEASURED.iter().find(|m| {
            m.backend == backend && m.architecture == r.architecture && m.shape == shape && m.batch_size == r.batch_size
        });
        let images = r.dataset.expected_train_counts().map(|c| c.iter().sum::<usize>());
        let (Some(m), Some(images)) = (measured, images) else {
            let why = match images {
                None => format!(
                    "not measured: the training images are known only once the data is read (cell {})",
                    cell.key.run_name()
                ),
                Some(_) => format!(
                    "not measured: no measured epoch of {:?} on {}x{}x{} images, batch {}, on this backend (cell {})",
                    r.architecture,
                    shape.0,
                    shape.1,
                    shape.2,
                    r.batch_size,
                    cell.key.run_name()
                ),
            };
            return Estimate { backend, seconds: Err(why), sources: Vec::new() };
        };
        let (plain, m2m) = trained_epochs(cell, plans[j]);
        let scale = images as f64 / m.train_images as f64;
        seconds += scale * (plain as f64 * m.plain_seconds + m2m as f64 * m.m2m_seconds);
        if !sources.contains(&m.source) {
            sources.push(m.source);
        }
    }
    Estimate { backend, seconds: Ok(seconds), sources }
}
