//! `m2m report`: finished cells of suite folders merged into one report.

use std::path::PathBuf;

use m2m_burn_plugin::suite::{collect, write_report};

#[derive(clap::Args)]
pub struct Args {
    /// Suite output folders holding suite.json and cells/.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write the report (default: the first folder).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl Args {
    pub fn run(self) -> anyhow::Result<()> {
        let report = collect(&self.dirs)?;
        let md = write_report(&report, self.out.as_deref().unwrap_or(&self.dirs[0]))?;
        super::print_table(&report);
        println!("report: {}", md.display());
        Ok(())
    }
}
