//! Progress for people: durations as people write them, and log lines that do not tear
//! a progress bar. A bar shown with [`show_bar`] is hidden while [`StderrAboveBar`]
//! writes a log line and drawn again below it, so `m2m`'s tracing output and a suite's bar
//! share the terminal.

use std::io::Write;
use std::sync::Mutex;

/// The bar on the terminal now, if any.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Makes `bar` the bar that log lines are written above (until [`hide_bar`]).
pub fn show_bar(bar: &indicatif::ProgressBar) {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
}

/// Log lines are written plainly again.
pub fn hide_bar() {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// A `tracing_subscriber` writer to stderr that writes each line above the bar shown by
/// [`show_bar`], if any.
#[derive(Debug, Clone, Copy, Default)]
pub struct StderrAboveBar;

/// One log event's bytes, written when the event is complete.
pub struct LineWriter(Vec<u8>);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.0);
        let write = || {
            let _ = std::io::stderr().lock().write_all(&bytes);
        };
        match BAR.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for StderrAboveBar {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter(Vec::new())
    }
}

/// `14 s`, `2 min 31 s`, `3 h 05 min`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(14.4), "14 s");
        assert_eq!(duration(151.0), "2 min 31 s");
        assert_eq!(duration(3.0 * 3600.0 + 5.0 * 60.0 + 9.0), "3 h 05 min");
        assert_eq!(duration(-1.0), "0 s");
    }
}
