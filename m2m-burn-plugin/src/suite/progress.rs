//! How far a suite run is: cells done of the shard's total, forks, epochs trained, time
//! elapsed and an estimate of the time left from the epoch times measured in this suite's
//! folder (plain and M2m epochs apart: an M2m epoch costs several plain ones). On a
//! terminal one bar, redrawn every second from the training cell's `state.json`, with log
//! lines written above it; in a pipe or file, one plain line when a cell starts and one
//! when it ends.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::prefix::ForkPlan;
use super::spec::{Cell, Suite};
use crate::run_dir::{EpochRecord, RunDir};
use crate::terminal::duration;

/// Seconds per epoch measured so far, plain and M2m epochs apart.
#[derive(Debug, Clone, Copy, Default)]
struct EpochTimes {
    plain: (f64, usize),
    m2m: (f64, usize),
}

impl EpochTimes {
    fn add(&mut self, records: &[EpochRecord]) {
        for r in records {
            let slot = if r.m2m.is_some() { &mut self.m2m } else { &mut self.plain };
            slot.0 += r.seconds;
            slot.1 += 1;
        }
    }

    /// Seconds for `plain` and `m2m` epochs; `None` before any epoch was measured. M2m
    /// epochs count as plain ones until one is measured.
    fn estimate(&self, plain: usize, m2m: usize) -> Option<f64> {
        let mean = |(sum, n): (f64, usize)| (n > 0).then(|| sum / n as f64);
        let p = mean(self.plain).or(mean(self.m2m))?;
        Some(plain as f64 * p + m2m as f64 * mean(self.m2m).unwrap_or(p))
    }
}

/// A cell's epochs as the estimate needs them: how many, and the first M2m epoch.
#[derive(Debug, Clone, Copy)]
struct Span {
    epochs: usize,
    m2m_from: usize,
}

impl Span {
    fn of(cell: &Cell) -> Self {
        let epochs = cell.recipe.epochs;
        Self { epochs, m2m_from: cell.recipe.m2m.as_ref().map_or(epochs, |m| m.from_epoch) }
    }

    /// Epochs still to train from epoch `from` on: (plain, M2m).
    fn left(&self, from: usize) -> (usize, usize) {
        let m2m = (from.max(self.m2m_from)..self.epochs).count();
        (self.epochs.saturating_sub(from) - m2m, m2m)
    }
}

fn epochs_left(cell: &Cell, from: usize) -> (usize, usize) {
    Span::of(cell).left(from)
}

/// The epoch a cell's training starts from now: where an unfinished run stopped, else its
/// fork point (when it will fork), else 0.
fn first_epoch(cell: &Cell, plan: Option<ForkPlan>) -> usize {
    let run = RunDir::new(cell.recipe.run_dir());
    match run.read_state() {
        Ok(Some(s)) if s.finished => cell.recipe.epochs,
        Ok(Some(s)) => s.completed_epochs,
        _ => plan.map_or(0, |p| p.epoch),
    }
}

struct State {
    done: usize,
    forked: usize,
    epochs_done: usize,
    /// The cell training now: its run directory, the epoch it started from, its epochs.
    training: Option<(PathBuf, usize, Span)>,
    /// Epochs (plain, M2m) still to train in cells that have not started.
    waiting: (usize, usize),
    times: EpochTimes,
}

/// The progress display of one `m2m suite` run.
pub struct SuiteProgress {
    name: String,
    cells: usize,
    started: Instant,
    state: Arc<Mutex<State>>,
    bar: Option<indicatif::ProgressBar>,
    stop: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl SuiteProgress {
    /// Progress over the cells `mine` of `suite`; a bar when stderr is a terminal and
    /// `bar` is asked for.
    pub fn start(suite: &Suite, mine: &[usize], plans: &[Option<ForkPlan>], bar: bool) -> Self {
        let mut times = EpochTimes::default();
        for c in &suite.cells {
            times.add(&RunDir::new(c.recipe.run_dir()).read_records().unwrap_or_default());
        }
        let waiting = mine.iter().fold((0, 0), |(p, m), &j| {
            let (a, b) = epochs_left(&suite.cells[j], first_epoch(&suite.cells[j], plans[j]));
            (p + a, m + b)
        });
        let state = State { done: 0, forked: 0, epochs_done: 0, training: None, waiting, times };
        let bar = (bar && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new((waiting.0 + waiting.1) as u64);
            let style = indicatif::ProgressStyle::with_template("{prefix} {wide_bar} {pos}/{len} epochs  {msg}")
                .expect("a valid template");
            bar.set_style(style);
            bar.set_prefix(format!("suite {}", suite.name));
            crate::terminal::show_bar(&bar);
            bar
        });
        let mut p = Self {
            name: suite.name.clone(),
            cells: mine.len(),
            started: Instant::now(),
            state: Arc::new(Mutex::new(state)),
            bar,
            stop: Arc::new(AtomicBool::new(false)),
            ticker: None,
        };
        if let Some(bar) = p.bar.clone() {
            let (state, stop, started, cells) = (p.state.clone(), p.stop.clone(), p.started, p.cells);
            p.ticker = Some(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let s = state.lock().unwrap_or_else(|e| e.into_inner());
                    let (position, message) = summary(&s, cells, started);
                    drop(s);
                    bar.set_position(position as u64);
                    bar.set_message(message);
                    std::thread::sleep(Duration::from_secs(1));
                }
            }));
        }
        p
    }

    /// A cell of this shard is next (`i` of the shard's cells, 0-based).
    pub fn cell(&self, i: usize, name: &str, fork: Option<(String, usize)>) {
        if self.bar.is_none() {
            let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let fork = fork.map_or(String::new(), |(source, e)| format!(" (fork of {source} after epoch {e})"));
            tracing::info!(
                "suite {}: cell {}/{} {}{fork}; {}",
                self.name,
                i + 1,
                self.cells,
                name,
                summary(&s, self.cells, self.started).1
            );
        }
    }

    /// Training of `cell` (one of the shard's, or one it needs first) starts at `from`.
    pub fn training(&self, cell: &Cell, from: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (plain, m2m) = epochs_left(cell, from);
        s.waiting = (s.waiting.0.saturating_sub(plain), s.waiting.1.saturating_sub(m2m));
        s.training = Some((cell.recipe.run_dir(), from, Span::of(cell)));
        if let Some(bar) = &self.bar {
            bar.set_length(bar.length().unwrap_or(0).max((s.epochs_done + plain + m2m) as u64));
        }
    }

    /// Training of the cell in [`Self::training`] ended (finished, failed or skipped).
    pub fn trained(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((dir, from, _)) = s.training.take() {
            let records = RunDir::new(dir).read_records().unwrap_or_default();
            let new: Vec<EpochRecord> = records.into_iter().filter(|r| r.epoch >= from).collect();
            s.epochs_done += new.len();
            s.times.add(&new);
        }
    }

    /// A cell of this shard is done (trained, skipped or failed).
    pub fn cell_done(&self, name: &str, forked: bool, seconds: f64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.done += 1;
        s.forked += forked as usize;
        if self.bar.is_none() {
            let line = summary(&s, self.cells, self.started).1;
            tracing::info!("suite {}: {name} done in {}; {line}", self.name, duration(seconds));
        }
    }
}

impl Drop for SuiteProgress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        if let Some(bar) = self.bar.take() {
            crate::terminal::hide_bar();
            bar.finish_and_clear();
        }
    }
}

/// Epochs trained so far (the cell in training included) and the status text: cells
/// done, forks, elapsed, and the time left.
fn summary(s: &State, cells: usize, started: Instant) -> (usize, String) {
    let (current, left) = match &s.training {
        Some((dir, from, span)) => {
            let state = RunDir::new(dir.clone()).read_state().ok().flatten();
            let completed = state.map_or(*from, |st| st.completed_epochs).max(*from);
            (completed - from, span.left(completed))
        }
        None => (0, (0, 0)),
    };
    let epochs = s.epochs_done + current;
    let eta = s
        .times
        .estimate(s.waiting.0 + left.0, s.waiting.1 + left.1)
        .map_or("ETA after the first epoch".to_string(), |t| format!("about {} left", duration(t)));
    let text = format!(
        "cells {}/{cells} done ({} forked), {} elapsed, {eta}",
        s.done,
        s.forked,
        duration(started.elapsed().as_secs_f64())
    );
    (epochs, text)
}

#[cfg(test)]
mod tests {
    use super::EpochTimes;

    #[test]
    fn m2m_epochs_are_estimated_apart_once_measured() {
        let mut t = EpochTimes::default();
        assert_eq!(t.estimate(3, 1), None);
        t.plain = (20.0, 2);
        assert_eq!(t.estimate(3, 1), Some(40.0));
        t.m2m = (90.0, 1);
        assert_eq!(t.estimate(3, 1), Some(120.0));
    }
}
