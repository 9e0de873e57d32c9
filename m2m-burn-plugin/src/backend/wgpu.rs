//! burn's wgpu backend (feature `wgpu`): AMD and Intel GPUs through Vulkan (or DirectX 12),
//! Apple GPUs through Metal, NVIDIA GPUs without a CUDA toolkit, and software Vulkan
//! (Mesa's lavapipe) where there is no GPU. Kernels are written in WGSL by CubeCL, through
//! the same runtime, fusion engine and autotuner as CUDA.

use burn::backend::wgpu::{CubeBackend, WgpuDevice, WgpuRuntime};

use super::WgpuAdapter;

/// wgpu with fusion and autotuning, under autodiff: what `--backend wgpu` trains on.
pub type Wgpu = burn::backend::Autodiff<burn::backend::Wgpu>;

/// wgpu without burn's fusion (each operation its own kernel), under autodiff: the GPU-path
/// tests run on both, so that a difference caused by fusion is named as such.
pub type WgpuUnfused = burn::backend::Autodiff<CubeBackend<WgpuRuntime, f32, i32, u32>>;

/// The device for `adapter`.
pub fn wgpu_device(adapter: WgpuAdapter) -> WgpuDevice {
    match adapter {
        WgpuAdapter::Default => WgpuDevice::DefaultDevice,
        WgpuAdapter::Discrete(n) => WgpuDevice::DiscreteGpu(n),
        WgpuAdapter::Integrated(n) => WgpuDevice::IntegratedGpu(n),
        WgpuAdapter::Virtual(n) => WgpuDevice::VirtualGpu(n),
        WgpuAdapter::Cpu => WgpuDevice::Cpu,
    }
}

/// Checks that the wgpu adapter can be used, turning burn's panic (no Vulkan, Metal or
/// DirectX 12 driver, no adapter of that kind) into an error that says what is missing.
pub fn probe_wgpu(adapter: WgpuAdapter) -> Result<(), super::Unavailable> {
    super::cubecl::log_cache();
    super::cubecl::first_operation::<burn::backend::Wgpu>(wgpu_device(adapter)).map_err(|reason| super::Unavailable {
        backend: format!("wgpu adapter {adapter:?}"),
        reason,
        needs: "It needs a GPU driver with Vulkan, Metal or DirectX 12 (on Linux without a GPU, Mesa's software \
                Vulkan: `apt install mesa-vulkan-drivers`, then `--backend wgpu:cpu`); use `--backend cpu` otherwise",
    })
}
