//! What `m2m` writes into pipes and files: readable progress lines (never burn's
//! run-together metric fields, never colour codes), one plain line per suite cell, and a
//! quiet end when the reader of its output goes away (`| head`).

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use m2m_tests::{tiny_suite_base, write_idx_dataset};

/// A suite over the tiny data set: ERM and DRS (a fork of ERM after epoch 1) for `seeds`.
fn suite(dir: &Path, epochs: usize, seeds: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    write_idx_dataset(&data, 40, 20, false);
    std::fs::write(dir.join("base.ron"), tiny_suite_base(&data, epochs)).unwrap();
    let path = dir.join("suite.ron");
    std::fs::write(
        &path,
        format!(
            r#"(name: "piped", base: "base.ron", output_dir: "{}", seeds: [{seeds}],
                methods: [(name: "ERM"), (name: "DRS", recipe: (sampler: (kind: ClassBalanced, from_epoch: 1)))])"#,
            dir.join("out").display()
        ),
    )
    .unwrap();
    path
}

/// A progress line: `epoch 2/3, batch 3/4 (75%), 812 img/s, loss 1.2345, accuracy 41.3%,
/// lr 5.00e-2, ETA epoch 0 s, run 1 s`.
fn is_progress_line(line: &str) -> bool {
    let Some(rest) = line.split("INFO").nth(1) else { return false };
    // After the event's target (`m2m_burn_plugin::train::renderer: `).
    let Some((_, rest)) = rest.split_once(": ") else { return false };
    let fields: Vec<&str> = rest.split(", ").collect();
    fields.len() >= 6
        && fields[0].starts_with("epoch ")
        && fields[0][6..].split('/').all(|n| n.parse::<usize>().is_ok())
        && fields[1].starts_with("batch ")
        && fields[2].ends_with(" img/s")
        && fields.iter().any(|f| f.starts_with("loss ") && f[5..].parse::<f64>().is_ok())
        && fields.iter().any(|f| f.starts_with("accuracy ") && f.ends_with('%'))
        && fields.iter().any(|f| f.starts_with("lr "))
        && fields.iter().any(|f| f.starts_with("ETA epoch "))
}

#[test]
fn piped_logs_hold_readable_progress_lines_and_one_line_per_suite_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = suite(tmp.path(), 3, "0, 1");
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .arg("suite")
        .arg(&suite)
        // A line at every batch instead of every 15 s, so that short cells write some.
        .env("M2M_LOG_EVERY", "0")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes in a pipe:\n{log}");
    assert!(!log.contains(" - batch "), "burn's run-together fields:\n{log}");
    let progress: Vec<&str> = log.lines().filter(|l| l.contains(" img/s, ")).collect();
    assert!(progress.len() >= 4, "{log}");
    for line in &progress {
        assert!(is_progress_line(line), "not a readable progress line: {line}");
    }
    // From the second epoch on, the time left for the whole run is there too.
    assert!(progress.iter().any(|l| l.contains(", run ")), "{log}");
    // One line when each cell starts and one when it is done, with the suite's progress.
    let starts: Vec<&str> = log.lines().filter(|l| l.contains("suite piped: cell ")).collect();
    assert_eq!(starts.len(), 4, "{log}");
    assert!(starts[1].contains("cell 2/4 DRS.Mnist.r4.d3.s0 (fork of ERM.Mnist.r4.d3.s0 after epoch 1)"), "{log}");
    assert!(starts[1].contains("cells 1/4 done (0 forked)") && starts[1].contains("elapsed"), "{log}");
    assert!(starts[1].contains("left"), "an estimate once epochs were measured: {log}");
    let done: Vec<&str> = log.lines().filter(|l| l.contains(" done in ")).collect();
    assert_eq!(done.len(), 4, "{log}");
    assert!(done[3].contains("cells 4/4 done (2 forked)"), "{log}");
}

#[test]
fn a_dry_run_into_a_closed_pipe_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    // 3,000 cells: far more lines than a pipe holds (64 KiB), so m2m is still writing when
    // the reader goes away.
    let seeds: Vec<String> = (0..1500).map(|s| s.to_string()).collect();
    let suite = suite(tmp.path(), 2, &seeds.join(", "));
    // `m2m suite --dry-run | head -c 8`: the reader closes the pipe after 8 bytes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(["suite", "--dry-run"])
        .arg(&suite)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    // Ended by SIGPIPE's default action, as `cat` or `ls` would be (a shell reports 141).
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(SIGPIPE), "{status:?}: {stderr}");
}

/// `m2m suite` on a terminal (a pseudo-terminal from util-linux's `script`), with `NO_COLOR`
/// as given; what it wrote there.
fn on_a_terminal(dir: &Path, no_color: Option<&str>) -> String {
    let suite = suite(dir, 1, "0");
    let command = format!("'{}' suite '{}'", env!("CARGO_BIN_EXE_m2m"), suite.display());
    let mut script = Command::new("script");
    script.args(["--quiet", "--return", "--command", &command, "/dev/null"]).env_remove("RUST_LOG");
    match no_color {
        Some(v) => script.env("NO_COLOR", v),
        None => script.env_remove("NO_COLOR"),
    };
    let out = script.output().expect("util-linux's `script` runs m2m on a pseudo-terminal");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    text
}

/// Whether `text` holds an SGR escape (colour, bold, dim): `ESC [ digits/semicolons m`.
fn has_colour(text: &str) -> bool {
    text.split('\u{1b}').skip(1).any(|rest| {
        rest.strip_prefix('[')
            .and_then(|r| r.split_once('m'))
            .is_some_and(|(codes, _)| codes.chars().all(|c| c.is_ascii_digit() || c == ';'))
    })
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    // On a terminal the log lines are coloured: the check below can fail.
    assert!(has_colour(&on_a_terminal(tmp.path(), None)), "no colour on a terminal");
    assert!(has_colour(&on_a_terminal(tmp.path(), Some(""))), "an empty NO_COLOR counts as unset");
    let plain = on_a_terminal(tmp.path(), Some("1"));
    // Log lines are there (the bar replaces the per-cell lines on a terminal), plain.
    assert!(plain.contains(" INFO m2m_burn_plugin::suite::execute: suite piped: "), "{plain}");
    assert!(!has_colour(&plain), "colour codes with NO_COLOR=1:\n{plain}");
}

/// SIGPIPE's number on Linux.
const SIGPIPE: i32 = 13;

/// `m2m-bench` with `args`: (exit code, stdout, stderr).
fn bench(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_m2m-bench")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn m2m_bench_has_help_version_and_one_line_errors() {
    let (code, help, _) = bench(&["--help"]);
    assert_eq!(code, Some(0));
    for word in ["compare", "batchnorm", "conv", "[MODEL]", "[ITERATIONS]", "small-cnn"] {
        assert!(help.contains(word), "`{word}` missing from --help:\n{help}");
    }
    let (code, version, _) = bench(&["--version"]);
    assert_eq!((code, version.trim()), (Some(0), concat!("m2m-bench ", env!("CARGO_PKG_VERSION"))));
    let (code, _, err) = bench(&["resnet33"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("error: invalid value 'resnet33' for '[MODEL]'"), "{err}");
    let (code, _, err) = bench(&["small-cnn", "many"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("'many'") && !err.contains("panicked"), "{err}");
    // The positional form the scripts and docs/benchmarks.md use still times a model.
    let (code, out, err) = bench(&["small-cnn", "4", "1", "8", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("cpu") && out.contains("img/s"), "{out}");
}
