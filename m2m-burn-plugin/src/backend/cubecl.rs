//! What the CubeCL backends (CUDA, wgpu) share: where CubeCL keeps its autotune results
//! and compiled kernels, and a first operation that turns a missing driver or device into
//! an error instead of burn's panic.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Computes 2 * 4 on `device`; `Err` with the panic's message when the device cannot be
/// used (no driver, no adapter, no NVRTC), `Err` with the wrong answer when it computes
/// nonsense.
pub(super) fn first_operation<B: Backend>(device: B::Device) -> Result<(), String> {
    // Caught on this thread only: swapping the process's panic hook here would silence
    // (or, racing another thread that swaps it, lose for good) other threads' panics.
    let outcome = crate::quiet::quietly(move || {
        let t = Tensor::<B, 1>::ones([4], &device).mul_scalar(2.0);
        t.sum().into_scalar()
    });
    match outcome {
        Ok(v) if burn::tensor::ElementConversion::elem::<f32>(v) == 8.0 => Ok(()),
        Ok(v) => Err(format!("it answered 2*4 = {}", burn::tensor::ElementConversion::elem::<f32>(v))),
        Err(panic) => Err(crate::quiet::panic_text(&panic)),
    }
}

/// Logs where CubeCL keeps its caches (after [`configure_cubecl_cache`]).
pub(super) fn log_cache() {
    match configure_cubecl_cache() {
        Some(dir) => tracing::info!("CubeCL caches (autotune results, compiled kernels): {}", dir.display()),
        None => tracing::info!("no cache folder in the environment: CubeCL's own cache settings"),
    }
}

/// The folder for CubeCL's autotune results and compiled kernels: `$M2M_CUBECL_CACHE`,
/// else `cubecl` in m2m's cache folder ([`crate::fs::cache_dir`], `~/.cache/m2m/cubecl`
/// by default).
pub fn cubecl_cache_dir() -> Option<std::path::PathBuf> {
    match std::env::var_os("M2M_CUBECL_CACHE") {
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => crate::fs::cache_dir().map(|d| d.join("cubecl")),
    }
}

/// Points CubeCL's autotune cache and its compiled-kernel cache (PTX on CUDA) at
/// [`cubecl_cache_dir`], so that the second run on a machine (or a machine given the
/// folder) skips autotuning and NVRTC. CubeCL's defaults would put the autotune cache in
/// the `target/` folder of the nearest Cargo project above the working directory and keep
/// no PTX cache. Settings from a `cubecl.toml` (or a `[cubecl]` section of `burn.toml`)
/// in the working directory or above win; `CUBECL_AUTOTUNE_LEVEL` (`minimal`, `balanced`
/// (default), `extensive`, `full`) is read as CubeCL reads it. Takes effect only before
/// the first CubeCL operation; `probe_cuda` and `probe_wgpu` call it. Returns the folder, or `None` (and
/// leaves CubeCL's settings alone) when the environment names no cache folder.
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
