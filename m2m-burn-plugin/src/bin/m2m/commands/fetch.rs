//! `m2m data fetch NAME`: download a built-in data set (m2m_burn_plugin::data::fetch),
//! with a progress bar on a terminal and a line per tenth of each file in a pipe.

use std::io::IsTerminal;
use std::path::PathBuf;

use m2m_burn_plugin::data::fetch::{fetch, fetch_root, FetchProgress, Fetched};
use m2m_burn_plugin::data::DatasetName;

use super::DatasetArg;

#[derive(clap::Args)]
pub struct Args {
    /// The data set.
    #[arg(value_enum)]
    name: DatasetArg,
    /// Install into this folder instead of $M2M_DATA (or, without it, m2m's cache
    /// folder); recipes find it there only through `dataset.path` or $M2M_DATA.
    #[arg(long, value_name = "DIR")]
    into: Option<PathBuf>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let dataset = DatasetName::from(self.name);
        let root = match self.into.or_else(fetch_root) {
            Some(r) => r,
            None => anyhow::bail!("no folder to fetch into: set $M2M_DATA, or pass --into DIR"),
        };
        let mut progress: Box<dyn FetchProgress> =
            if std::io::stderr().is_terminal() { Box::new(Bar::default()) } else { Box::new(Lines::default()) };
        match fetch(dataset, &root, progress.as_mut())? {
            Fetched::Installed(p) => println!("{dataset:?} installed in {}", p.display()),
            Fetched::AlreadyThere(p) => println!("{dataset:?} is already in {} (nothing downloaded)", p.display()),
        }
        Ok(())
    }
}

/// indicatif's bar, in bytes.
#[derive(Default)]
struct Bar(Option<indicatif::ProgressBar>);

impl FetchProgress for Bar {
    fn start(&mut self, file: &str, _url: &str, done: u64, total: Option<u64>) {
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t),
            None => indicatif::ProgressBar::new_spinner(),
        };
        let style =
            indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                .map(|s| s.progress_chars("=> "));
        if let (Some(_), Ok(style)) = (total, style) {
            bar.set_style(style);
        }
        bar.set_message(file.to_string());
        bar.set_position(done);
        m2m_burn_plugin::terminal::show_bar(&bar);
        self.0 = Some(bar);
    }
    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(done);
        }
    }
    fn finish(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
        m2m_burn_plugin::terminal::hide_bar();
    }
}

/// Plain lines on stderr: the start, each further tenth (or 10 MB without a length),
/// and the end.
#[derive(Default)]
struct Lines {
    file: String,
    total: Option<u64>,
    next: u64,
    done: u64,
}

impl Lines {
    fn step(&self) -> u64 {
        self.total.map_or(10 << 20, |t| (t / 10).max(1))
    }
}

impl FetchProgress for Lines {
    fn start(&mut self, file: &str, url: &str, done: u64, total: Option<u64>) {
        let from = if done > 0 { format!(", resuming at {}", mb(done)) } else { String::new() };
        let size = total.map_or("size not announced".to_string(), mb);
        eprintln!("{file}: downloading from {url} ({size}{from})");
        *self = Lines { file: file.to_string(), total, next: 0, done };
        self.next = (done / self.step() + 1) * self.step();
    }
    fn advance(&mut self, done: u64) {
        self.done = done;
        if done >= self.next && self.total.is_none_or(|t| done < t) {
            let of = self.total.map_or(String::new(), |t| format!(" of {} ({}%)", mb(t), done * 100 / t.max(1)));
            eprintln!("{}: {}{of}", self.file, mb(done));
            self.next = (done / self.step() + 1) * self.step();
        }
    }
    fn finish(&mut self) {
        eprintln!("{}: {} received", self.file, mb(self.done));
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
