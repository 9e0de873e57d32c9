//! Backend selection. Flex (CPU) is always built; CUDA with the `cuda` feature.

use serde::{Deserialize, Serialize};

pub type Cpu = burn::backend::Autodiff<burn::backend::Flex>;
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Autodiff<burn::backend::Cuda>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    Cpu,
    Cuda { device: usize },
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
