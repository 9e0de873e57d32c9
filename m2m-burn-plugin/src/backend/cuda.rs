//! burn's CUDA backend (feature `cuda`).

/// CUDA with fusion and autotuning, under autodiff.
pub type Cuda = burn::backend::Autodiff<burn::backend::Cuda>;

/// Checks that CUDA device `index` can be used, turning burn's panic (no driver, no GPU,
/// no NVRTC) into an error that says what is missing.
pub fn probe_cuda(index: usize) -> Result<(), super::Unavailable> {
    super::cubecl::log_cache();
    let device = burn::backend::cuda::CudaDevice::new(index);
    super::cubecl::first_operation::<burn::backend::Cuda>(device).map_err(|reason| super::Unavailable {
        backend: format!("CUDA device {index}"),
        reason,
        needs: "It needs an NVIDIA GPU, its driver (libcuda.so.1) and NVRTC (libnvrtc.so.12 or .13) on the \
                library path; use `--backend cpu` otherwise",
    })
}
