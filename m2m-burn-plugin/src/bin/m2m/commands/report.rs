//! `m2m report`: finished cells of suite folders merged into one report. It fails (exit
//! status 1) when cells are missing, naming them, so a pipeline's merge step can tell a
//! finished suite from a broken one; `--allow-incomplete` writes the partial report and
//! exits 0.

use std::path::PathBuf;

use m2m_burn_plugin::run::lock_holder;
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
    let Some((run, state)) = runs.iter().find_map(|r| r.read_state().ok().flatten().map(|s| (r, s))) else {
        return match runs.first() {
            Some(r) => format!("started, no epoch finished ({})", r.root.display()),
            None => "not started".into(),
        };
    };
    let at = format!("{} of {} epochs done", state.completed_epochs, state.total_epochs);
    match (state.stopped, lock_holder(&run.root)) {
        (_, Some(holder)) => format!("{at}; locked by {holder} (training, or killed)"),
        (Some(why), None) => format!("{at}; {why}; resume with the same command"),
        (None, None) => format!("{at}; failed or killed: its log says why ({})", run.root.display()),
    }
}
