//! `m2m data fetch` against an HTTP server on the loopback address that this test starts:
//! archives built here in the official layouts (CIFAR binary tarballs, gzipped IDX files)
//! from generated pixels, served with HTTP Range support, 404s and transfers cut mid-way.
//! The official addresses and checksums are never used except where nothing can be
//! reached (a closed proxy port) or where the proxy is this server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use m2m_burn_plugin::data::cifar::CifarKind;
use m2m_burn_plugin::data::fetch::{fetch_from, Archive, Catalog, FetchError, Fetched, Silent};
use m2m_burn_plugin::data::DatasetName;

/// What the server answers for one request target.
#[derive(Clone)]
struct Route {
    body: Vec<u8>,
    /// The first `cut_times` transfers of this route end at byte `cut_at` of the file.
    cut_times: usize,
    cut_at: usize,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    /// (request target, Range header) of every request, in order.
    log: Vec<(String, Option<String>)>,
}

/// A small HTTP/1.1 server on 127.0.0.1: GET with `Range: bytes=N-` (206), 404 for
/// unknown targets, 403 for CONNECT, one request per connection.
struct Server {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        Server { base, state }
    }
    fn route(&self, target: &str, body: &[u8], cut_times: usize, cut_at: usize) -> String {
        let url = if target.starts_with("http") { target.to_string() } else { format!("{}{target}", self.base) };
        let key = url.strip_prefix(&self.base).unwrap_or(&url).to_string();
        self.state.lock().unwrap().routes.insert(key, Route { body: body.to_vec(), cut_times, cut_at });
        url
    }
    fn log(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().unwrap().log.clone()
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("").to_string());
    let route = {
        let mut s = state.lock().unwrap();
        s.log.push((target.clone(), range.clone()));
        let r = s.routes.get(&target).cloned();
        if let Some(r) = s.routes.get_mut(&target) {
            r.cut_times = r.cut_times.saturating_sub(1);
        }
        r
    };
    let route = match (method, route) {
        ("GET", Some(r)) => r,
        ("CONNECT", _) => return reply(&mut stream, "403 Forbidden", &[], b""),
        _ => return reply(&mut stream, "404 Not Found", &[], b"not here"),
    };
    let len = route.body.len();
    let start: usize =
        range.as_deref().and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()).unwrap_or(0);
    let end = if route.cut_times > 0 { route.cut_at.max(start) } else { len };
    let headers: Vec<String> = if range.is_some() {
        vec![format!("Content-Range: bytes {start}-{}/{len}", len - 1), format!("Content-Length: {}", len - start)]
    } else {
        vec![format!("Content-Length: {len}")]
    };
    let status = if range.is_some() { "206 Partial Content" } else { "200 OK" };
    reply(&mut stream, status, &headers, &route.body[start..end]);
}

fn reply(stream: &mut TcpStream, status: &str, headers: &[String], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !headers.iter().any(|h| h.starts_with("Content-Length")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn md5(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

/// CIFAR-10's binary tarball in the official layout (`cifar-10-batches-bin/...`), 20
/// generated images per file; and the labels written.
fn cifar10_tarball() -> (Vec<u8>, Vec<Vec<u8>>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cifar-10-batches-bin");
    let labels = m2m_tests::write_cifar_dataset(&dir, CifarKind::Cifar10, 20);
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    tar.append_dir_all("cifar-10-batches-bin", &dir).unwrap();
    (tar.into_inner().unwrap().finish().unwrap(), labels)
}

/// The four gzipped IDX files of an MNIST-style data set, by file name.
fn idx_files() -> Vec<(String, Vec<u8>)> {
    let tmp = tempfile::tempdir().unwrap();
    m2m_tests::write_idx_dataset(tmp.path(), 12, 4, true);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

fn cifar_catalog(url: &str, md5: &str) -> Catalog {
    let archive = Archive { file: "cifar-10-binary.tar.gz".into(), urls: vec![url.into()], md5: md5.into() };
    Catalog { dataset: DatasetName::Cifar10, archives: vec![archive] }
}

fn fetch(catalog: &Catalog, root: &Path) -> Result<Fetched, FetchError> {
    fetch_from(catalog, root, &mut Silent)
}

/// Everything under `dir` (relative paths), to show that a failed fetch left nothing.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            out.extend(tree(&p).into_iter().map(|q| p.strip_prefix(dir).unwrap().join(q)));
        }
    }
    out.sort();
    out
}

#[test]
fn a_good_cifar_archive_is_installed_where_recipes_look_and_a_second_fetch_downloads_nothing() {
    let server = Server::start();
    let (tarball, labels) = cifar10_tarball();
    let url = server.route("/cifar-10-binary.tar.gz", &tarball, 0, 0);
    let root = tempfile::tempdir().unwrap();
    let catalog = cifar_catalog(&url, &md5(&tarball));

    let done = fetch(&catalog, root.path()).unwrap();
    let folder = root.path().join("cifar-10-batches-bin");
    assert_eq!(done, Fetched::Installed(folder.clone()));
    // Only the data set's folder is left, and the lock file: no downloads, no staging.
    assert_eq!(tree(&root.path().join(".m2m-fetch")), [PathBuf::from("cifar-10-batches-bin.lock")]);
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 2, "{:?}", tree(root.path()));
    let (train, test) = DatasetName::Cifar10.read(&folder).unwrap();
    assert_eq!((train.len(), test.len()), (100, 20));
    let train_labels: Vec<usize> = labels[..5].iter().flatten().map(|&y| y as usize).collect();
    assert_eq!(train.labels, train_labels);
    // The search path holds the fetch root: $M2M_DATA here.
    let found = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(["data", "fetch", "cifar10"])
        .env("M2M_DATA", root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&found.stdout);
    assert!(found.status.success() && stdout.contains("already in"), "{stdout}");

    let requests = server.log().len();
    assert_eq!(fetch(&catalog, root.path()).unwrap(), Fetched::AlreadyThere(folder));
    assert_eq!(server.log().len(), requests, "a second fetch asked the server again");
}

#[test]
fn gzipped_idx_files_come_from_the_second_address_when_the_first_answers_404() {
    let server = Server::start();
    let files = idx_files();
    let archives: Vec<Archive> = files
        .iter()
        .map(|(name, bytes)| Archive {
            file: name.clone(),
            urls: vec![format!("{}/gone/{name}", server.base), server.route(&format!("/mirror/{name}"), bytes, 0, 0)],
            md5: md5(bytes),
        })
        .collect();
    let root = tempfile::tempdir().unwrap();
    let catalog = Catalog { dataset: DatasetName::FashionMnist, archives };
    let folder = fetch(&catalog, root.path()).unwrap();
    assert_eq!(folder.path(), root.path().join("fashion-mnist"));
    let (train, test) = DatasetName::FashionMnist.read(folder.path()).unwrap();
    assert_eq!((train.len(), test.len()), (120, 40));
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(folder.path().join(name)).unwrap(), bytes, "{name} is not the served file");
    }
    let tried: Vec<String> = server.log().into_iter().map(|(t, _)| t).collect();
    assert_eq!(tried.iter().filter(|t| t.starts_with("/gone/")).count(), 4, "{tried:?}");
}

#[test]
fn a_wrong_checksum_stops_with_one_line_naming_the_address_and_leaves_nothing() {
    let server = Server::start();
    let (tarball, _) = cifar10_tarball();
    let url = server.route("/cifar-10-binary.tar.gz", &tarball, 0, 0);
    let root = tempfile::tempdir().unwrap();
    let err = fetch(&cifar_catalog(&url, "0123456789abcdef0123456789abcdef"), root.path()).unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, FetchError::Download { .. }), "{err:?}");
    assert!(!line.contains('\n'), "{line}");
    for part in [url.as_str(), "MD5 ", &md5(&tarball), "0123456789abcdef0123456789abcdef", "by hand"] {
        assert!(line.contains(part), "`{part}` missing from: {line}");
    }
    assert!(!root.path().join("cifar-10-batches-bin").exists());
    assert!(!root.path().join(".m2m-fetch/cifar-10-binary.tar.gz.part").exists(), "{:?}", tree(root.path()));
}

#[test]
fn a_truncated_archive_with_its_checksum_is_refused_before_anything_is_in_place() {
    let server = Server::start();
    let (tarball, _) = cifar10_tarball();
    let short = &tarball[..tarball.len() / 2];
    let url = server.route("/cifar-10-binary.tar.gz", short, 0, 0);
    let root = tempfile::tempdir().unwrap();
    let err = fetch(&cifar_catalog(&url, &md5(short)), root.path()).unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, FetchError::Archive { .. }), "{err:?}");
    assert!(!line.contains('\n') && line.contains(&url) && line.contains("by hand"), "{line}");
    assert!(!root.path().join("cifar-10-batches-bin").exists(), "{:?}", tree(root.path()));
    // No staging folder is left behind.
    let staging = tree(&root.path().join(".m2m-fetch"));
    assert!(staging.iter().all(|p| !p.to_string_lossy().starts_with("extract-")), "{staging:?}");
}

#[test]
fn a_404_names_the_address() {
    let server = Server::start();
    let url = format!("{}/nothing/cifar-10-binary.tar.gz", server.base);
    let root = tempfile::tempdir().unwrap();
    let line = fetch(&cifar_catalog(&url, &md5(b"x")), root.path()).unwrap_err().to_string();
    assert!(line.contains(&format!("{url}: HTTP 404")) && !line.contains('\n'), "{line}");
    assert!(!root.path().join("cifar-10-batches-bin").exists());
}

#[test]
fn a_cut_transfer_resumes_with_a_range_request_in_the_same_run_and_in_the_next() {
    let server = Server::start();
    let (tarball, _) = cifar10_tarball();
    let half = tarball.len() / 2;
    // Cut once: the same run asks for the rest.
    let url = server.route("/once.tar.gz", &tarball, 1, half);
    let root = tempfile::tempdir().unwrap();
    let catalog = cifar_catalog(&url, &md5(&tarball));
    assert!(matches!(fetch(&catalog, root.path()).unwrap(), Fetched::Installed(_)));
    let log = server.log();
    assert_eq!(
        log,
        vec![("/once.tar.gz".to_string(), None), ("/once.tar.gz".to_string(), Some(format!("bytes={half}-")))]
    );

    // Cut on every attempt of this run: the part stays for the next run, which resumes.
    let url = server.route("/always.tar.gz", &tarball, 3, half);
    let root = tempfile::tempdir().unwrap();
    let catalog = cifar_catalog(&url, &md5(&tarball));
    let line = fetch(&catalog, root.path()).unwrap_err().to_string();
    assert!(line.contains("run again to resume") && line.contains(&url), "{line}");
    let part = root.path().join(".m2m-fetch/cifar-10-binary.tar.gz.part");
    assert_eq!(std::fs::metadata(&part).unwrap().len(), half as u64);
    assert!(!root.path().join("cifar-10-batches-bin").exists());
    assert!(matches!(fetch(&catalog, root.path()).unwrap(), Fetched::Installed(_)));
    let last = server.log().last().cloned().unwrap();
    assert_eq!(last, ("/always.tar.gz".to_string(), Some(format!("bytes={half}-"))));
    assert!(DatasetName::Cifar10.read(&root.path().join("cifar-10-batches-bin")).is_ok());
}

#[test]
fn a_folder_already_there_is_never_written_into() {
    let server = Server::start();
    let (tarball, _) = cifar10_tarball();
    let url = server.route("/cifar-10-binary.tar.gz", &tarball, 0, 0);
    let root = tempfile::tempdir().unwrap();
    let mine = root.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let line = fetch(&cifar_catalog(&url, &md5(&tarball)), root.path()).unwrap_err().to_string();
    assert!(line.contains("never writes into an existing folder") && line.contains("cifar-10-batches-bin"), "{line}");
    assert_eq!(tree(&mine), vec![PathBuf::from("notes.txt")]);
    assert!(server.log().is_empty(), "it downloaded before refusing");
}

/// `m2m data fetch NAME` as a user runs it, with its HTTP traffic sent to `proxy`.
fn m2m_fetch(name: &str, proxy: &str, data: &Path) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_m2m"))
        .args(["data", "fetch", name])
        .env("M2M_DATA", data)
        .env("HTTPS_PROXY", proxy)
        .env("HTTP_PROXY", proxy)
        .env("ALL_PROXY", proxy)
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env_remove("all_proxy")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr), started.elapsed())
}

#[test]
fn offline_the_command_fails_in_seconds_with_one_line_naming_the_official_address() {
    // A port nothing listens on: every connection is refused, as without network.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (ok, _, stderr, took) = m2m_fetch("cifar10", &format!("http://{closed}"), data.path());
    assert!(!ok, "{stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"), "{stderr}");
    assert!(errors[0].contains("by hand"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!data.path().join("cifar-10-batches-bin").exists());
}

#[test]
fn through_a_proxy_serving_other_bytes_the_command_prints_progress_lines_and_refuses_the_checksum() {
    // This server as the user's HTTP proxy: it refuses HTTPS tunnels (the first, HTTPS
    // address) and serves generated bytes, not MNIST, at the plain-HTTP address.
    let server = Server::start();
    let bytes = m2m_tests::bytes(300_000, 7);
    let official = "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz";
    server.route(official, &bytes, 0, 0);
    let data = tempfile::tempdir().unwrap();
    let (ok, _, stderr, _) = m2m_fetch("mnist", &server.base, data.path());
    assert!(!ok, "{stderr}");
    // Plain lines in a pipe: the start, tenths, the end.
    assert!(stderr.contains(&format!("train-images-idx3-ubyte.gz: downloading from {official} (0.3 MB)")), "{stderr}");
    assert!(stderr.contains("train-images-idx3-ubyte.gz: 0.3 MB received"), "{stderr}");
    // A line per tenth (chunks arrive in sizes of the network's choosing, so a line may
    // say 21% rather than 20%), rising.
    let percents: Vec<u64> = stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("train-images-idx3-ubyte.gz: ")?.split_once("MB of 0.3 MB (")?.1.strip_suffix("%)")
        })
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(percents.len() >= 8 && percents.windows(2).all(|w| w[0] < w[1]), "{percents:?}\n{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let line = errors[0];
    assert!(line.contains("https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"), "{line}");
    assert!(line.contains(&format!("{official}: MD5 {}", md5(&bytes))), "{line}");
    assert!(line.contains("f68b3c2dcbeaaa9fbdd348bbdeb94873 is published"), "{line}");
    assert!(!data.path().join("mnist").exists());
}

#[test]
fn a_second_fetch_of_the_same_data_set_into_the_same_folder_waits_for_none_and_says_so() {
    let server = Server::start();
    let (tarball, _) = cifar10_tarball();
    let url = server.route("/cifar-10-binary.tar.gz", &tarball, 0, 0);
    let root = tempfile::tempdir().unwrap();
    // Another fetch holds the lock.
    std::fs::create_dir(root.path().join(".m2m-fetch")).unwrap();
    let held = std::fs::File::create(root.path().join(".m2m-fetch/cifar-10-batches-bin.lock")).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let err = fetch(&cifar_catalog(&url, &md5(&tarball)), root.path()).unwrap_err();
    assert!(matches!(err, FetchError::Busy { .. }) && err.to_string().contains("another `m2m data fetch`"), "{err}");
    assert!(server.log().is_empty());
    // Unlocked explicitly: a process another test forks may share the descriptor.
    rustix::fs::flock(&held, rustix::fs::FlockOperation::Unlock).unwrap();
    drop(held);
    assert!(matches!(fetch(&cifar_catalog(&url, &md5(&tarball)), root.path()).unwrap(), Fetched::Installed(_)));
}
