//! File-system helpers: every result file is written atomically (temporary file in the
//! same folder, then rename), so killing the process never leaves a half-written file;
//! and the one folder our caches live under.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The folder m2m's caches go under (decoded images, CubeCL's kernels): `$M2M_CACHE`,
/// else `$XDG_CACHE_HOME/m2m`, else `~/.cache/m2m`; `None` when the environment names none.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("M2M_CACHE")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("m2m")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("m2m")))
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes `value` as pretty JSON to `path`, atomically (the folder is created).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    use anyhow::Context;
    let json = serde_json::to_string_pretty(value)?;
    write_atomic(path, json.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Reads the JSON file `path`; `None` when there is no such file.
pub fn read_json_opt<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> anyhow::Result<Option<T>> {
    use anyhow::Context;
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{}: corrupt JSON", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// `path` with `suffix` appended to its file name (`runs/lr0.1` + `.mpk` =
/// `runs/lr0.1.mpk`). Not `with_extension`, which cuts a name at its last dot: `lr0.1` and
/// `lr0.2` would both become `lr0.mpk`, and run names such as `ERM.FashionMnist.r100.d0.s0`
/// hold dots.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// This machine's name (for lock files and TensorBoard's event file names).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}
