//! Learning-rate schedules declared in epochs, as the papers write them.
//!
//! The reference sets the learning rate once per epoch (algorithm.md §2): a linear warm-up
//! `lr0 * (e+1)/W` for `e < W`, then `lr0 * factor` from each milestone on. burn-train's
//! schedulers count iterations, so [`EpochLrSchedule::lr_at_iteration`] converts once the
//! sampler has fixed the number of iterations per epoch.

use serde::{Deserialize, Serialize};

/// One step of the schedule: from `epoch` on (0-based), the LR is `base_lr * factor`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Milestone {
    /// 0-based epoch from which `factor` applies.
    pub epoch: usize,
    /// Multiplier of the base learning rate (not of the previous one), finite and > 0.
    pub factor: f64,
}

/// A validated epoch-level schedule. Build it with [`EpochLrSchedule::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochLrSchedule {
    base_lr: f64,
    warmup_epochs: usize,
    milestones: Vec<Milestone>,
}

/// Why [`EpochLrSchedule::new`] refused a schedule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// The base learning rate (given) is not a finite positive number.
    #[error("base learning rate must be finite and > 0, got {0}")]
    BaseLr(f64),
    /// A milestone epoch (first) is not after the previous one (second).
    #[error("milestone epochs must be strictly increasing: {0} does not follow {1}")]
    NotIncreasing(usize, usize),
    /// A milestone factor (first) is not a finite positive number; the second value is its epoch.
    #[error("milestone factor must be finite and > 0, got {0} at epoch {1}")]
    Factor(f64, usize),
    /// A milestone epoch (first) is not below the number of epochs (second).
    #[error("milestone at epoch {0} is past the last epoch ({1} epochs)")]
    PastEnd(usize, usize),
    /// The warm-up length in epochs (first) exceeds the first milestone's epoch (second).
    #[error("warm-up of {0} epochs reaches the first milestone at epoch {1}")]
    WarmupOverlap(usize, usize),
}

impl EpochLrSchedule {
    /// A schedule for a run of `num_epochs` epochs: `base_lr`, a linear warm-up over the
    /// first `warmup_epochs` epochs (0 for none), then `milestones` in increasing epoch
    /// order. Errors when the base LR or a factor is not finite and positive, milestones
    /// do not strictly increase, one lies at or past `num_epochs`, or the warm-up runs
    /// past the first milestone.
    pub fn new(
        base_lr: f64,
        warmup_epochs: usize,
        milestones: Vec<Milestone>,
        num_epochs: usize,
    ) -> Result<Self, ScheduleError> {
        if !(base_lr.is_finite() && base_lr > 0.0) {
            return Err(ScheduleError::BaseLr(base_lr));
        }
        for w in milestones.windows(2) {
            if w[1].epoch <= w[0].epoch {
                return Err(ScheduleError::NotIncreasing(w[1].epoch, w[0].epoch));
            }
        }
        for m in &milestones {
            if !(m.factor.is_finite() && m.factor > 0.0) {
                return Err(ScheduleError::Factor(m.factor, m.epoch));
            }
            if m.epoch >= num_epochs {
                return Err(ScheduleError::PastEnd(m.epoch, num_epochs));
            }
        }
        if let Some(first) = milestones.first() {
            if warmup_epochs > first.epoch {
                return Err(ScheduleError::WarmupOverlap(warmup_epochs, first.epoch));
            }
        }
        Ok(Self { base_lr, warmup_epochs, milestones })
    }

    /// The learning rate before any milestone (and at the end of the warm-up).
    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// Number of warm-up epochs (0 for none).
    pub fn warmup_epochs(&self) -> usize {
        self.warmup_epochs
    }

    /// The milestones, in increasing epoch order.
    pub fn milestones(&self) -> &[Milestone] {
        &self.milestones
    }

    /// The learning rate used throughout 0-based epoch `epoch`.
    pub fn lr_at_epoch(&self, epoch: usize) -> f64 {
        if epoch < self.warmup_epochs {
            return self.base_lr * (epoch + 1) as f64 / self.warmup_epochs as f64;
        }
        let factor = self.milestones.iter().rev().find(|m| epoch >= m.epoch).map_or(1.0, |m| m.factor);
        self.base_lr * factor
    }

    /// The learning rate of 0-based training iteration `iteration` when every epoch has
    /// `iterations_per_epoch` iterations.
    pub fn lr_at_iteration(&self, iteration: usize, iterations_per_epoch: usize) -> f64 {
        assert!(iterations_per_epoch > 0, "iterations_per_epoch must be > 0");
        self.lr_at_epoch(iteration / iterations_per_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper() -> EpochLrSchedule {
        EpochLrSchedule::new(
            0.1,
            5,
            vec![Milestone { epoch: 160, factor: 0.01 }, Milestone { epoch: 180, factor: 1e-4 }],
            200,
        )
        .unwrap()
    }

    #[test]
    fn paper_schedule_at_milestone_epochs() {
        let s = paper();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(s.lr_at_epoch(0), 0.02));
        assert!(close(s.lr_at_epoch(1), 0.04));
        assert!(close(s.lr_at_epoch(4), 0.1));
        assert!(close(s.lr_at_epoch(5), 0.1));
        assert!(close(s.lr_at_epoch(159), 0.1));
        assert!(close(s.lr_at_epoch(160), 1e-3));
        assert!(close(s.lr_at_epoch(179), 1e-3));
        assert!(close(s.lr_at_epoch(180), 1e-5));
        assert!(close(s.lr_at_epoch(199), 1e-5));
    }

    #[test]
    fn iterations_map_to_epochs() {
        let s = paper();
        // 97 iterations per epoch (CIFAR-10-LT rho 100, batch 128).
        assert_eq!(s.lr_at_iteration(0, 97), s.lr_at_epoch(0));
        assert_eq!(s.lr_at_iteration(96, 97), s.lr_at_epoch(0));
        assert_eq!(s.lr_at_iteration(97, 97), s.lr_at_epoch(1));
        assert_eq!(s.lr_at_iteration(160 * 97 - 1, 97), 0.1);
        assert_eq!(s.lr_at_iteration(160 * 97, 97), 0.1 * 0.01);
    }

    #[test]
    fn invalid_schedules_are_rejected() {
        let m = |epoch, factor| Milestone { epoch, factor };
        assert_eq!(
            EpochLrSchedule::new(0.1, 0, vec![m(10, 0.1), m(10, 0.01)], 20),
            Err(ScheduleError::NotIncreasing(10, 10))
        );
        assert_eq!(EpochLrSchedule::new(0.1, 0, vec![m(20, 0.1)], 20), Err(ScheduleError::PastEnd(20, 20)));
        assert_eq!(EpochLrSchedule::new(0.0, 0, vec![], 20), Err(ScheduleError::BaseLr(0.0)));
        assert_eq!(EpochLrSchedule::new(0.1, 0, vec![m(5, -1.0)], 20), Err(ScheduleError::Factor(-1.0, 5)));
        assert_eq!(EpochLrSchedule::new(0.1, 6, vec![m(5, 0.1)], 20), Err(ScheduleError::WarmupOverlap(6, 5)));
    }
}
