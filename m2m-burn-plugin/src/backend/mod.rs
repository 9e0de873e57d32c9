//! Backend selection. Flex (CPU) is always built; CUDA with the `cuda` feature.

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

pub type Cpu = burn::backend::Autodiff<burn::backend::Flex>;
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Autodiff<burn::backend::Cuda>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    Cpu,
    Cuda { device: usize },
}

/// Work generic over the backend, run on the one a user chose ([`run_on`]): the CLI's
/// commands implement it once instead of once per backend.
pub trait BackendTask {
    type Output;
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Runs `task` on the chosen backend, after checking that a GPU backend can be used (an
/// error that says what is missing instead of burn's panic). The one place where the
/// backends built into this binary are listed.
pub fn run_on<T: BackendTask>(choice: BackendChoice, task: T) -> anyhow::Result<T::Output> {
    match choice {
        BackendChoice::Cpu => task.run::<Cpu>(Default::default()),
        BackendChoice::Cuda { device } => cuda(device, task),
    }
}

#[cfg(feature = "cuda")]
fn cuda<T: BackendTask>(device: usize, task: T) -> anyhow::Result<T::Output> {
    probe_cuda(device)?;
    task.run::<Gpu>(burn::backend::cuda::CudaDevice::new(device))
}

#[cfg(not(feature = "cuda"))]
fn cuda<T: BackendTask>(_: usize, _: T) -> anyhow::Result<T::Output> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "cuda" => Ok(BackendChoice::Cuda { device: 0 }),
            other => match other.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(device)) => Ok(BackendChoice::Cuda { device }),
                _ => Err(format!("unknown backend `{other}`: use cpu, cuda or cuda:N")),
            },
        }
    }
}

/// Checks that CUDA device `index` can be used, turning burn's panic (no driver, no GPU,
/// no NVRTC) into an error that says what is missing.
#[cfg(feature = "cuda")]
pub fn probe_cuda(index: usize) -> anyhow::Result<()> {
    use burn::tensor::Tensor;
    match configure_cubecl_cache() {
        Some(dir) => tracing::info!("CubeCL caches (autotune results, compiled kernels): {}", dir.display()),
        None => tracing::info!("no cache folder in the environment: CubeCL's own cache settings"),
    }
    let device = burn::backend::cuda::CudaDevice::new(index);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(move || {
        let t = Tensor::<burn::backend::Cuda, 1>::ones([4], &device).mul_scalar(2.0);
        t.sum().into_scalar()
    });
    std::panic::set_hook(hook);
    match outcome {
        Ok(v) if v == 8.0 => Ok(()),
        Ok(v) => anyhow::bail!("CUDA device {index} answered 2*4 = {v}; the CUDA setup is broken"),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown reason".into());
            anyhow::bail!(
                "CUDA device {index} is not usable ({msg}). It needs an NVIDIA GPU, its driver (libcuda.so.1) \
                 and NVRTC (libnvrtc.so.12 or .13) on the library path; use `--backend cpu` otherwise"
            )
        }
    }
}

/// The folder for CubeCL's autotune results and compiled kernels: `$M2M_CUBECL_CACHE`,
/// else `cubecl` in m2m's cache folder ([`crate::fs::cache_dir`], `~/.cache/m2m/cubecl`
/// by default).
#[cfg(feature = "cuda")]
pub fn cubecl_cache_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("M2M_CUBECL_CACHE") {
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => crate::fs::cache_dir().map(|d| d.join("cubecl")),
    }
}

/// Points CubeCL's autotune cache and its compiled-kernel (PTX) cache at
/// [`cubecl_cache_dir`], so that the second run on a machine (or a machine given the
/// folder) skips autotuning and NVRTC. CubeCL's defaults would put the autotune cache in
/// the `target/` folder of the nearest Cargo project above the working directory and keep
/// no PTX cache. Settings from a `cubecl.toml` (or a `[cubecl]` section of `burn.toml`)
/// in the working directory or above win; `CUBECL_AUTOTUNE_LEVEL` (`minimal`, `balanced`
/// (default), `extensive`, `full`) is read as CubeCL reads it. Takes effect only before
/// the first CUDA operation; `probe_cuda` calls it. Returns the folder, or `None` (and
/// leaves CubeCL's settings alone) when the environment names no cache folder.
#[cfg(feature = "cuda")]
pub fn configure_cubecl_cache() -> Option<std::path::PathBuf> {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let dir = cubecl_cache_dir()?;
    let mut slot = CubeClRuntimeConfig::storage().lock();
    if slot.is_none() {
        let mut config = CubeClRuntimeConfig::from_current_dir();
        if matches!(config.autotune.cache, CacheConfig::Target) {
            config.autotune.cache = CacheConfig::File(dir.join("autotune"));
        }
        if config.compilation.cache.is_none() {
            config.compilation.cache = Some(CacheConfig::File(dir.join("kernels")));
        }
        *slot = Some(std::sync::Arc::new(config.override_from_env()));
    }
    Some(dir)
}
