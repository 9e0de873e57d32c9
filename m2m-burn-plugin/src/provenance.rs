//! Where a run's numbers came from: one [`Session`] per process that trained it (a
//! resumed run has several), kept in the run directory's `provenance.json`, written as
//! TensorBoard text and listed per cell by the suite report.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// m2m's version, with the commit it was built from when built from a git checkout
/// (`build.rs`; changes not yet committed are not marked).
pub fn m2m_version() -> String {
    match option_env!("M2M_GIT_COMMIT") {
        Some(commit) => format!("{} ({commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// One process's share of a run: what trained which epochs, where and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// m2m's version, with the git commit it was built from when built from a checkout.
    pub m2m: String,
    /// burn's version (from the workspace's `Cargo.lock` at build time).
    pub burn: String,
    /// The backend as burn names it (`B::name`), e.g. `autodiff<flex>` or `autodiff<fusion<cubecl<cuda>>>`.
    pub backend: String,
    /// The device (`Debug` of burn's device type), e.g. `Cuda(0)` or `DefaultDevice`.
    pub device: String,
    /// The GPUs' names and driver versions as `nvidia-smi` lists them, on CUDA backends
    /// where it is installed; `None` elsewhere.
    pub gpu: Option<String>,
    /// The CPU's model name (`/proc/cpuinfo`), where the system says it.
    pub cpu: Option<String>,
    /// The threads the CPU work runs on (rayon's pool: our CPU kernels and burn's Flex).
    pub threads: usize,
    /// The machine's host name.
    pub host: String,
    /// The command line of the process, program first.
    pub command: Vec<String>,
    /// When the process started training the run (RFC 3339, UTC).
    pub started: String,
    /// The first epoch (0-based) this process trained.
    pub first_epoch: usize,
    /// When it stopped training the run, and how; `None` while it trains (or when the
    /// process was killed outright).
    pub ended: Option<Ending>,
}

/// How and when a [`Session`] ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ending {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// `finished`, `stopped: ...` (a signal or a lost lock; the run resumes) or `failed: ...`.
    pub how: String,
    /// The epochs the run had completed by then.
    pub completed_epochs: usize,
}

impl Session {
    /// This process, training `first_epoch` on from now on `device` of backend `B`.
    pub fn start<B: burn::tensor::backend::Backend>(device: &B::Device, first_epoch: usize) -> Session {
        let backend = B::name(device);
        let gpu = backend.to_lowercase().contains("cuda").then(nvidia_smi).flatten();
        Session {
            m2m: m2m_version(),
            burn: env!("M2M_BURN_VERSION").to_string(),
            backend,
            device: format!("{device:?}"),
            gpu,
            cpu: cpu_model(Path::new("/proc/cpuinfo")),
            threads: rayon::current_num_threads(),
            host: host_name(),
            command: std::env::args().collect(),
            started: now(),
            first_epoch,
            ended: None,
        }
    }

    /// Marks the session ended now, `how`, after `completed_epochs` epochs.
    pub fn end(&mut self, how: String, completed_epochs: usize) {
        self.ended = Some(Ending { at: now(), how, completed_epochs });
    }

    /// One line for a report or a log: version, backend, device, host and dates.
    pub fn summary(&self) -> String {
        let hardware = self.gpu.clone().or_else(|| self.cpu.clone()).unwrap_or_else(|| "unknown hardware".into());
        let ended = self.ended.as_ref().map_or_else(|| "not ended".to_string(), |e| format!("{} ({})", e.at, e.how));
        format!(
            "m2m {}, burn {}, {} on {} ({hardware}, {} threads), host {}, epochs from {}: {} to {ended}",
            self.m2m, self.burn, self.backend, self.device, self.threads, self.host, self.first_epoch, self.started
        )
    }
}

/// Now, as RFC 3339 in UTC with microseconds (`2026-12-06T01:02:03.456789Z`): one width,
/// so that two times compare as their texts do.
fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let (date, clock) = (t.date(), t.time());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        date.year(),
        date.month() as u8,
        date.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.microsecond()
    )
}

/// The first `model name` of a `/proc/cpuinfo`-style file.
fn cpu_model(cpuinfo: &Path) -> Option<String> {
    let text = std::fs::read_to_string(cpuinfo).ok()?;
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_string())
    })
}

/// The host name: the kernel's (Linux), else `$HOSTNAME`, else `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `name, driver` of each GPU, from `nvidia-smi` when it runs.
fn nvidia_smi() -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let gpus: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().replace(", ", ", driver "))
        .filter(|l| !l.is_empty())
        .collect();
    (!gpus.is_empty()).then(|| gpus.join("; "))
}

#[cfg(test)]
mod tests {
    use super::{cpu_model, Session};
    use crate::backend::Cpu;

    #[test]
    fn a_session_names_this_build_this_process_and_its_end() {
        let mut s = Session::start::<Cpu>(&Default::default(), 3);
        assert!(s.m2m.starts_with(env!("CARGO_PKG_VERSION")), "{}", s.m2m);
        assert_eq!(s.burn, "0.21.0");
        assert!(s.backend.to_lowercase().contains("flex"), "{}", s.backend);
        assert_eq!(s.gpu, None);
        assert!(s.threads >= 1 && !s.host.is_empty() && !s.command.is_empty());
        assert_eq!((s.started.len(), &s.started[10..11], &s.started[26..]), (27, "T", "Z"), "{}", s.started);
        assert_eq!((s.first_epoch, s.ended.is_none()), (3, true));
        s.end("finished".into(), 12);
        let ended = s.ended.clone().unwrap();
        assert!(ended.at >= s.started, "{} before {}", ended.at, s.started);
        assert_eq!((ended.how.as_str(), ended.completed_epochs), ("finished", 12));
        assert!(s.summary().contains("epochs from 3") && s.summary().contains("(finished)"), "{}", s.summary());
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), s);
    }

    #[test]
    fn the_cpu_model_is_the_first_model_name_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpuinfo");
        std::fs::write(&path, "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\n\nmodel name\t: other\n").unwrap();
        assert_eq!(cpu_model(&path).as_deref(), Some("Example CPU @ 2.0GHz"));
        std::fs::write(&path, "processor\t: 0\n").unwrap();
        assert_eq!(cpu_model(&path), None);
        assert_eq!(cpu_model(&dir.path().join("missing")), None);
    }
}
