//! The GPU arms of [`super::run_on`]: the backend when its feature is built in, else an
//! error that says how to build it.

use super::{BackendTask, WgpuAdapter};

#[cfg(feature = "cuda")]
pub fn cuda<T: BackendTask>(device: usize, task: T) -> anyhow::Result<T::Output> {
    super::probe_cuda(device)?;
    task.run::<super::Cuda>(burn::backend::cuda::CudaDevice::new(device))
}

#[cfg(not(feature = "cuda"))]
pub fn cuda<T: BackendTask>(_: usize, _: T) -> anyhow::Result<T::Output> {
    anyhow::bail!("this m2m was built without CUDA support; rebuild with `cargo build --release --features cuda`")
}

#[cfg(feature = "wgpu")]
pub fn wgpu<T: BackendTask>(adapter: WgpuAdapter, task: T) -> anyhow::Result<T::Output> {
    super::probe_wgpu(adapter)?;
    task.run::<super::Wgpu>(super::wgpu_device(adapter))
}

#[cfg(not(feature = "wgpu"))]
pub fn wgpu<T: BackendTask>(_: WgpuAdapter, _: T) -> anyhow::Result<T::Output> {
    anyhow::bail!("this m2m was built without wgpu support; rebuild with `cargo build --release --features wgpu`")
}
