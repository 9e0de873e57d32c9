//! `m2m suite FILE --slurm`: the suite as a Slurm job array (one task per shard, only the
//! shards with unfinished cells) and a merge job that writes the report once every task
//! succeeded. The scripts are written into the suite's folder (`slurm/`), so a person can
//! read, edit and resubmit them by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use m2m_burn_plugin::backend::BackendChoice;
use m2m_burn_plugin::run_dir::RunDir;
use m2m_burn_plugin::suite::{deal, plan_forks, Shard, Suite};

#[derive(clap::Args)]
pub struct SlurmArgs {
    /// Submit the suite to Slurm with sbatch: a job array of its shards and a merge job
    /// (`m2m report`) that runs after all of them succeeded. Resubmits only the shards
    /// with unfinished cells when run again.
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: how many shards (array tasks) to deal the cells into (default: one
    /// per fork family, at most 64).
    #[arg(long, requires = "slurm")]
    shards: Option<usize>,
    /// With --slurm: run at most K array tasks at once (`--array=...%K`).
    #[arg(long, requires = "slurm", value_name = "K")]
    array_parallel: Option<usize>,
    /// With --slurm: the time before the end of a task at which Slurm sends SIGTERM, so
    /// that m2m stops at a safe point (`--signal=B:TERM@SECS`).
    #[arg(long, requires = "slurm", default_value_t = 180, value_name = "SECS")]
    signal_before: u64,
    /// With --slurm: options for sbatch after `--` (e.g. `-- --partition=gpu
    /// --gres=gpu:1 --time=1-00:00:00`); partition, account and QoS also go to the merge job.
    #[arg(last = true, requires = "slurm", value_name = "SBATCH_OPTIONS")]
    sbatch: Vec<String>,
}

/// Writes the scripts and submits them (or, with `dry_run`, prints them).
pub fn submit(
    suite: &Suite,
    suite_file: &Path,
    args: &SlurmArgs,
    backend: Option<BackendChoice>,
    no_fork: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (count, unfinished) = shards_to_submit(suite, args)?;
    let out = absolute(&suite.output_dir)?;
    let dir = out.join("slurm");
    let m2m = std::env::current_exe().context("finding the m2m executable to run on the nodes")?;
    let job = Job { suite, suite_file: absolute(suite_file)?, out, m2m, logs: dir.join("logs") };
    if unfinished.is_empty() {
        println!(
            "every cell of suite {} is finished: nothing to submit (`m2m report {}` writes the report)",
            suite.name,
            job.out.display()
        );
        return Ok(());
    }
    let ids = ranges(&unfinished);
    let array_script = job.array_script(&ids, count, args, backend, no_fork);
    let merge_script = job.merge_script();
    let merge_options = merge_options(&args.sbatch);
    let (array_path, merge_path) = (dir.join("array.sbatch"), dir.join("merge.sbatch"));
    println!("suite {}: {} of {count} shards have unfinished cells (array ids {ids})", suite.name, unfinished.len());
    if dry_run {
        println!("--- {}\n{array_script}--- {}\n{merge_script}", array_path.display(), merge_path.display());
        println!("sbatch --parsable {} {}", args.sbatch.join(" "), array_path.display());
        println!(
            "sbatch --parsable --dependency=afterok:<array job id> --kill-on-invalid-dep=yes {} {}",
            merge_options.join(" "),
            merge_path.display()
        );
        return Ok(());
    }
    let sbatch = which("sbatch").ok_or_else(|| {
        anyhow::anyhow!(
            "--slurm: sbatch is not on PATH; run this on a Slurm login node, or add --dry-run to see the scripts"
        )
    })?;
    std::fs::create_dir_all(&job.logs).with_context(|| format!("creating {}", job.logs.display()))?;
    for (path, text) in [(&array_path, &array_script), (&merge_path, &merge_script)] {
        m2m_burn_plugin::fs::write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let array_id = sbatch_run(&sbatch, &args.sbatch, &array_path)?;
    let dependency = format!("--dependency=afterok:{array_id}");
    let mut options = vec![dependency, "--kill-on-invalid-dep=yes".into()];
    options.extend(merge_options);
    let merge_id = sbatch_run(&sbatch, &options, &merge_path)?;
    println!("submitted array job {array_id} ({}) and merge job {merge_id}", array_path.display());
    println!("logs: {}", job.logs.display());
    Ok(())
}

/// The number of shards (`--shards`, else one per family of cells that fork from each
/// other, at most 64) and those of them with unfinished cells.
fn shards_to_submit(suite: &Suite, args: &SlurmArgs) -> anyhow::Result<(usize, Vec<usize>)> {
    let (plans, _) = plan_forks(&suite.cells);
    let families = deal(&suite.cells, &plans, suite.cells.len()).cost.iter().filter(|&&c| c > 0.0).count();
    let count = args.shards.unwrap_or(families.clamp(1, 64));
    anyhow::ensure!(count >= 1, "--shards 0: needs at least one shard");
    let dealt = deal(&suite.cells, &plans, count);
    let unfinished = (0..count)
        .filter(|&s| {
            dealt
                .cells_of(Shard { index: s, count })
                .iter()
                .any(|&j| !RunDir::new(suite.cells[j].recipe.run_dir()).is_finished())
        })
        .collect();
    Ok((count, unfinished))
}

/// What the two batch scripts run, with absolute paths (they run on other nodes).
struct Job<'a> {
    suite: &'a Suite,
    suite_file: PathBuf,
    out: PathBuf,
    /// This m2m executable.
    m2m: PathBuf,
    logs: PathBuf,
}

impl Job<'_> {
    /// The array job: shard `$SLURM_ARRAY_TASK_ID` of `count` per task, for array `ids`.
    fn array_script(
        &self,
        ids: &str,
        count: usize,
        args: &SlurmArgs,
        backend: Option<BackendChoice>,
        no_fork: bool,
    ) -> String {
        let array = format!("{ids}{}", args.array_parallel.map_or(String::new(), |k| format!("%{k}")));
        let mut run = vec![
            quote(&self.m2m.to_string_lossy()),
            "suite".into(),
            quote(&self.suite_file.to_string_lossy()),
            "--shard".into(),
            format!("\"${{SLURM_ARRAY_TASK_ID}}/{count}\""),
            "--output-dir".into(),
            quote(&self.out.to_string_lossy()),
        ];
        if let Some(b) = backend {
            run.extend(["--backend".into(), quote(&b.to_string())]);
        }
        if no_fork {
            run.push("--no-fork".into());
        }
        format!(
            "#!/bin/bash\n\
             # Written by `m2m suite {file} --slurm`: shard ${{SLURM_ARRAY_TASK_ID}} of {count} of suite {name}.\n\
             # SIGTERM (scancel, the time limit via --signal, preemption) stops m2m at its next safe\n\
             # point: it exits with status 75 and the same command resumes. Run `m2m suite ... --slurm`\n\
             # again to resubmit the shards with unfinished cells.\n\
             #SBATCH --job-name=m2m-{name}\n\
             #SBATCH --array={array}\n\
             #SBATCH --output={logs}/%x-%A_%a.out\n\
             #SBATCH --open-mode=append\n\
             #SBATCH --signal=B:TERM@{signal}\n\
             #SBATCH --requeue\n\
             exec {run}\n",
            file = self.suite_file.display(),
            name = self.suite.name,
            logs = self.logs.display(),
            signal = args.signal_before,
            run = run.join(" "),
        )
    }

    /// The merge job: the report, once every shard succeeded.
    fn merge_script(&self) -> String {
        format!(
            "#!/bin/bash\n\
             # Written by `m2m suite {file} --slurm`: the report of suite {name}, once every shard succeeded.\n\
             #SBATCH --job-name=m2m-{name}-report\n\
             #SBATCH --output={logs}/%x-%j.out\n\
             exec {m2m} report {out}\n",
            file = self.suite_file.display(),
            name = self.suite.name,
            logs = self.logs.display(),
            m2m = quote(&self.m2m.to_string_lossy()),
            out = quote(&self.out.to_string_lossy()),
        )
    }
}

/// Runs `sbatch --parsable OPTIONS SCRIPT`; the job id it prints.
fn sbatch_run(sbatch: &Path, options: &[String], script: &Path) -> anyhow::Result<String> {
    let output = Command::new(sbatch)
        .arg("--parsable")
        .args(options)
        .arg(script)
        .output()
        .with_context(|| format!("running {}", sbatch.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    anyhow::ensure!(
        output.status.success(),
        "sbatch {} {} failed ({}): {}",
        options.join(" "),
        script.display(),
        output.status,
        stderr.trim()
    );
    // `--parsable` prints `id` or `id;cluster`.
    let id = stdout.trim().split(';').next().unwrap_or("").to_string();
    anyhow::ensure!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()),
        "sbatch {}: expected a job id, got `{}`",
        script.display(),
        stdout.trim()
    );
    Ok(id)
}

/// The sbatch options the merge job needs as much as the array: where it may run and who
/// pays (`--partition=gpu`, `-p gpu`, `-pgpu`, account, QoS, cluster).
fn merge_options(options: &[String]) -> Vec<String> {
    const FLAGS: [&str; 8] = ["--partition", "-p", "--account", "-A", "--qos", "-q", "--clusters", "-M"];
    let mut kept = Vec::new();
    let mut i = 0;
    while i < options.len() {
        let o = &options[i];
        if FLAGS.contains(&o.as_str()) {
            kept.extend(options[i..(i + 2).min(options.len())].iter().cloned());
            i += 2;
            continue;
        }
        let attached = FLAGS.iter().any(|f| o.starts_with(&format!("{f}=")) || (f.len() == 2 && o.starts_with(f)));
        if attached {
            kept.push(o.clone());
        }
        i += 1;
    }
    kept
}

/// `0-3,5,7-8` for [0, 1, 2, 3, 5, 7, 8].
fn ranges(ids: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut k = i;
        while k + 1 < ids.len() && ids[k + 1] == ids[k] + 1 {
            k += 1;
        }
        parts.push(if k == i { ids[i].to_string() } else { format!("{}-{}", ids[i], ids[k]) });
        i = k + 1;
    }
    parts.join(",")
}

/// A word for bash: single-quoted unless plainly safe.
fn quote(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-:+=,@".contains(c)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("making {} absolute", path.display()))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_ids_are_written_as_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        assert_eq!(ranges(&[4]), "4");
    }

    #[test]
    fn words_are_quoted_for_bash() {
        assert_eq!(quote("/a/b-c.ron"), "/a/b-c.ron");
        assert_eq!(quote("/my runs/it's"), r"'/my runs/it'\''s'");
    }

    #[test]
    fn where_and_who_pays_go_to_the_merge_job_too() {
        let options: Vec<String> =
            ["--partition=gpu", "--gres=gpu:1", "-A", "lab", "--time=1:00:00", "-qnormal", "-pcpu"]
                .map(String::from)
                .into();
        assert_eq!(merge_options(&options), ["--partition=gpu", "-A", "lab", "-qnormal", "-pcpu"]);
    }
}
