//! `m2m report`: finished cells of suite folders merged into one report. It fails (exit
//! status 1) when cells are missing, naming them, so a pipeline's merge step can tell a
//! finished suite from a broken one; `--allow-incomplete` writes the partial report and
//! exits 0.

use std::path::{Path, PathBuf};

use m2m_burn_plugin::run_dir::RunDir;
use m2m_burn_plugin::suite::{collect, write_report};

#[derive(clap::Args)]
pub struct Args {
    /// Suite output folders holding suite.json and cells/.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write the report (default: the first folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Exit 0 even when some cells are missing (not started, unfinished or failed); the
    /// report says which.
    #[arg(long)]
    allow_incomplete: bool,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let report = collect(&self.dirs)?;
        let md = write_report(&report, self.out.as_deref().unwrap_or(&self.dirs[0]))?;
        super::print_table(&report);
        println!("report: {}", md.display());
        if report.missing.is_empty() || self.allow_incomplete {
            return Ok(());
        }
        let list: Vec<String> =
            report.missing.iter().map(|name| format!("  {name}: {}", status(&self.dirs, name))).collect();
        anyhow::bail!(
            "{} of the suite's {} cells are missing (the report above leaves them out; --allow-incomplete \
             accepts that):\n{}",
            report.missing.len(),
            report.total_cells,
            list.join("\n")
        )
    }
}

/// What became of the unfinished cell `name`, from its run directory in any of `dirs`.
fn status(dirs: &[PathBuf], name: &str) -> String {
    let runs: Vec<RunDir> =
        dirs.iter().map(|d| RunDir::new(d.join("cells").join(name))).filter(|r| r.root.is_dir()).collect();
    let Some(run) = runs.iter().find(|r| matches!(r.read_state(), Ok(Some(_)))) else {
        return match runs.first() {
            Some(r) => format!("started, no epoch finished ({})", r.root.display()),
            None => "not started".into(),
        };
    };
    let lock = lock_of(&run.root);
    match run.read_state() {
        Ok(Some(s)) => {
            let at = format!("{} of {} epochs done", s.completed_epochs, s.total_epochs);
            match (s.stopped, lock.is_file()) {
                (_, true) => format!("{at}; locked by {} (training, or killed)", read(&lock)),
                (Some(why), false) => format!("{at}; {why}; resume with the same command"),
                (None, false) => format!("{at}; failed or killed: its log says why ({})", run.root.display()),
            }
        }
        Ok(None) => "not started".into(),
        Err(e) => format!("unreadable state: {e:#}"),
    }
}

fn lock_of(run: &Path) -> PathBuf {
    let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    run.with_file_name(format!("{name}.lock"))
}

fn read(lock: &Path) -> String {
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(host), Some(pid)) => format!("process {pid} on {host}"),
        _ => lock.display().to_string(),
    }
}
