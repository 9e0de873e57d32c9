//! Downloading one file: resumed with an HTTP Range request from whatever an earlier,
//! interrupted transfer left, retried when a transfer is cut, and checked against its
//! published MD5 before it is renamed to its final name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::catalog::Archive;
use super::{FetchError, FetchProgress};

/// Transfers of one address, each resuming the one before, before the next address.
const ATTEMPTS: usize = 3;
const CHUNK: usize = 1 << 16;

/// The HTTP client: rustls, proxies from `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` (and
/// `NO_PROXY`), a short connection timeout so that a machine without network fails in
/// seconds, and a read timeout that ends a stalled transfer (which the next attempt
/// resumes).
pub(super) fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .try_proxy_from_env(true)
        .user_agent(concat!("m2m/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// How one transfer ended, short of the whole file.
enum Transfer {
    /// The connection ended before the announced length: worth resuming.
    Cut(String),
    /// This address will not deliver (refused, not found, no network): the next one.
    Failed(String),
}

/// Downloads `archive` into `dir` (resuming `<file>.part` if an earlier run left one) and
/// returns the verified file. An earlier, verified download in `dir` is used as it is.
pub(super) fn download(
    agent: &ureq::Agent,
    archive: &Archive,
    dir: &Path,
    progress: &mut dyn FetchProgress,
) -> Result<PathBuf, FetchError> {
    let done = dir.join(&archive.file);
    if done.is_file() && md5_of(&done)? == archive.md5 {
        return Ok(done);
    }
    let part = dir.join(format!("{}.part", archive.file));
    let mut failures: Vec<String> = Vec::new();
    for url in &archive.urls {
        let mut attempt = 0;
        let why = loop {
            attempt += 1;
            match transfer(agent, url, &part, &archive.file, progress)? {
                Ok(()) => match verify(archive, url, &part)? {
                    None => {
                        std::fs::rename(&part, &done).map_err(|e| FetchError::local(&done, e))?;
                        return Ok(done);
                    }
                    // A wrong file: the part is removed, so the next address starts afresh.
                    Some(wrong) => break wrong,
                },
                Err(Transfer::Cut(why)) if attempt < ATTEMPTS => {
                    tracing::info!("{url}: {why}; resuming (attempt {} of {ATTEMPTS})", attempt + 1);
                }
                Err(Transfer::Cut(why)) => {
                    break format!(
                        "{why} ({ATTEMPTS} attempts; the part is kept in {}: run again to resume)",
                        part.display()
                    )
                }
                Err(Transfer::Failed(why)) => break why,
            }
        };
        failures.push(format!("{url}: {why}"));
    }
    Err(FetchError::Download { file: archive.file.clone(), failures: failures.join("; "), manual: String::new() })
}

/// `None` when `part` has the published MD5; else the mismatch, after removing `part`.
fn verify(archive: &Archive, url: &str, part: &Path) -> Result<Option<String>, FetchError> {
    let got = md5_of(part)?;
    if got == archive.md5 {
        return Ok(None);
    }
    std::fs::remove_file(part).map_err(|e| FetchError::local(part, e))?;
    tracing::warn!("{url}: MD5 {got}, but {} is published for {}", archive.md5, archive.file);
    Ok(Some(format!("MD5 {got} but {} is published (the download was removed)", archive.md5)))
}

/// One GET of `url` into `part`: from its current length with a Range request, or from
/// the start when the server ignores the range. `Ok(Ok(()))` when the announced length
/// (or, without one, the end of the stream) was reached.
fn transfer(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    file: &str,
    progress: &mut dyn FetchProgress,
) -> Result<Result<(), Transfer>, FetchError> {
    let have = part.metadata().map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.set("Range", &format!("bytes={have}-"));
    }
    let response = match request.call() {
        Ok(r) => r,
        // The part already holds the whole file: its MD5 decides.
        Err(ureq::Error::Status(416, _)) if have > 0 => return Ok(Ok(())),
        Err(ureq::Error::Status(code, r)) => {
            return Ok(Err(Transfer::Failed(format!("HTTP {code} {}", r.status_text()))))
        }
        Err(ureq::Error::Transport(t)) => return Ok(Err(Transfer::Failed(transport_reason(&t)))),
    };
    let resumed = response.status() == 206;
    let start = if resumed { have } else { 0 };
    let total = if resumed {
        response.header("Content-Range").and_then(|r| r.rsplit('/').next()).and_then(|t| t.parse().ok())
    } else {
        response.header("Content-Length").and_then(|l| l.parse::<u64>().ok())
    };
    let mut out = OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(part)
        .map_err(|e| FetchError::local(part, e))?;
    progress.start(file, url, start, total);
    let copied = copy(&mut response.into_reader(), &mut out, part, start, progress);
    progress.finish();
    out.sync_all().map_err(|e| FetchError::local(part, e))?;
    let (got, cut) = copied?;
    Ok(match (cut, total) {
        (Some(e), _) => Err(Transfer::Cut(format!("the transfer stopped after {got} bytes: {e}"))),
        (None, Some(t)) if got < t => Err(Transfer::Cut(format!("the transfer stopped after {got} of {t} bytes"))),
        (None, _) => Ok(()),
    })
}

/// The reason a connection failed, without ureq's "Transport:" prefixes.
fn transport_reason(t: &ureq::Transport) -> String {
    let mut why = t.kind().to_string();
    if let Some(m) = t.message() {
        why = format!("{why}: {m}");
    }
    if let Some(src) = std::error::Error::source(t) {
        why = format!("{why}: {src}");
    }
    why
}

/// Copies the body into `out` and returns the bytes the part holds, with the read error
/// (connection cut, timeout) that ended the copy early, if one did; a failed write is an
/// error of this machine.
fn copy(
    body: &mut dyn Read,
    out: &mut File,
    part: &Path,
    start: u64,
    progress: &mut dyn FetchProgress,
) -> Result<(u64, Option<std::io::Error>), FetchError> {
    let mut buf = vec![0u8; CHUNK];
    let mut written = start;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok((written, None)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok((written, Some(e))),
        };
        out.write_all(&buf[..n]).map_err(|e| FetchError::local(part, e))?;
        written += n as u64;
        progress.advance(written);
    }
}

/// The file's MD5, lower-case hex.
pub(super) fn md5_of(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(|e| FetchError::local(path, e))?;
    let mut ctx = md5::Context::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(|e| FetchError::local(path, e))?;
        if n == 0 {
            return Ok(format!("{:x}", ctx.finalize()));
        }
        ctx.consume(&buf[..n]);
    }
}
