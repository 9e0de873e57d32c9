//! The recipe's epoch-level LR schedule as a burn-train scheduler, which is stepped once
//! per iteration (before it): iteration `i` runs at `lr_at_epoch(i / iterations_per_epoch)`.

use burn::lr_scheduler::LrScheduler;
use burn::tensor::backend::Backend;
use m2m_core::schedule::EpochLrSchedule;

#[derive(Clone, Debug)]
pub struct EpochScheduler {
    schedule: EpochLrSchedule,
    iterations_per_epoch: usize,
    /// Iterations already stepped.
    iteration: usize,
}

impl EpochScheduler {
    /// `iterations_per_epoch` comes from the training loader once it knows the epoch length.
    pub fn new(schedule: EpochLrSchedule, iterations_per_epoch: usize) -> Self {
        assert!(iterations_per_epoch > 0);
        Self { schedule, iterations_per_epoch, iteration: 0 }
    }

    /// Positioned at the first iteration of 0-based `epoch` (a run that starts there).
    pub fn starting_at_epoch(mut self, epoch: usize) -> Self {
        self.iteration = epoch * self.iterations_per_epoch;
        self
    }
}

impl LrScheduler for EpochScheduler {
    type Record<B: Backend> = usize;

    fn step(&mut self) -> f64 {
        let lr = self.schedule.lr_at_iteration(self.iteration, self.iterations_per_epoch);
        self.iteration += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> usize {
        self.iteration
    }

    fn load_record<B: Backend>(mut self, record: usize) -> Self {
        self.iteration = record;
        self
    }
}
