//! Backend selection, in one place. Flex (CPU) is always built; CUDA with the `cuda`
//! feature and wgpu (Vulkan, Metal, DirectX 12) with the `wgpu` feature, both through
//! burn's CubeCL runtime with kernel fusion and autotuning. Everything else in the crate
//! is generic over the backend.

#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod cubecl;
#[cfg(feature = "cuda")]
mod cuda;
mod gpu;
#[cfg(feature = "wgpu")]
mod wgpu;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub use cubecl::configure_cubecl_cache;
#[cfg(feature = "cuda")]
pub use cuda::{probe_cuda, Cuda};
#[cfg(feature = "wgpu")]
pub use wgpu::{probe_wgpu, wgpu_device, Wgpu, WgpuUnfused};

/// The CPU backend: burn's Flex under autodiff, with our convolution and BatchNorm kernels.
pub type Cpu = burn::backend::Autodiff<burn::backend::Flex>;

/// A wgpu adapter: the best one wgpu finds (a discrete GPU first; `CUBECL_WGPU_DEFAULT_DEVICE`
/// overrides it), or the N-th adapter of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WgpuAdapter {
    /// The adapter wgpu ranks best.
    Default,
    /// The N-th discrete GPU (from 0).
    Discrete(usize),
    /// The N-th integrated GPU (from 0).
    Integrated(usize),
    /// The N-th virtual GPU (from 0), as in virtual machines.
    Virtual(usize),
    /// A software adapter, e.g. Mesa's lavapipe (Vulkan on the CPU).
    Cpu,
}

/// The backend a run trains on, as recipes (`backend:`) and `--backend` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// [`Cpu`]: burn's Flex with m2m's own CPU kernels.
    Cpu,
    /// burn's CUDA backend (built with the `cuda` feature).
    Cuda {
        /// The CUDA device index (from 0).
        device: usize,
    },
    /// burn's wgpu backend (built with the `wgpu` feature): Vulkan, Metal or DirectX 12.
    Wgpu {
        /// Which adapter to use.
        adapter: WgpuAdapter,
    },
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    /// `cpu`, `cuda`, `cuda:N`, `wgpu` (the best adapter), `wgpu:N` (the N-th discrete
    /// GPU), `wgpu:integrated:N`, `wgpu:virtual:N` or `wgpu:cpu`.
    fn from_str(s: &str) -> Result<Self, String> {
        let index = |n: &str| n.parse::<usize>().map_err(|_| format!("`{n}` is not an adapter or device number"));
        let parts: Vec<&str> = s.split(':').collect();
        let choice = match parts.as_slice() {
            ["cpu"] => BackendChoice::Cpu,
            ["cuda"] => BackendChoice::Cuda { device: 0 },
            ["cuda", n] => BackendChoice::Cuda { device: index(n)? },
            ["wgpu"] => BackendChoice::Wgpu { adapter: WgpuAdapter::Default },
            ["wgpu", "cpu"] => BackendChoice::Wgpu { adapter: WgpuAdapter::Cpu },
            ["wgpu", "integrated", n] => BackendChoice::Wgpu { adapter: WgpuAdapter::Integrated(index(n)?) },
            ["wgpu", "virtual", n] => BackendChoice::Wgpu { adapter: WgpuAdapter::Virtual(index(n)?) },
            ["wgpu", n] => BackendChoice::Wgpu { adapter: WgpuAdapter::Discrete(index(n)?) },
            _ => {
                return Err(format!(
                    "unknown backend `{s}`: use cpu, cuda, cuda:N, wgpu, wgpu:N, wgpu:integrated:N, wgpu:virtual:N or wgpu:cpu"
                ))
            }
        };
        Ok(choice)
    }
}

/// The form [`FromStr`](std::str::FromStr) reads (`cuda:1`, `wgpu:integrated:0`).
impl std::fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendChoice::Cpu => write!(f, "cpu"),
            BackendChoice::Cuda { device } => write!(f, "cuda:{device}"),
            BackendChoice::Wgpu { adapter: WgpuAdapter::Default } => write!(f, "wgpu"),
            BackendChoice::Wgpu { adapter: WgpuAdapter::Discrete(n) } => write!(f, "wgpu:{n}"),
            BackendChoice::Wgpu { adapter: WgpuAdapter::Integrated(n) } => write!(f, "wgpu:integrated:{n}"),
            BackendChoice::Wgpu { adapter: WgpuAdapter::Virtual(n) } => write!(f, "wgpu:virtual:{n}"),
            BackendChoice::Wgpu { adapter: WgpuAdapter::Cpu } => write!(f, "wgpu:cpu"),
        }
    }
}

/// A GPU backend that cannot be used on this machine: what was asked for, why burn could
/// not run on it, and what it needs. Returned by `probe_cuda` and `probe_wgpu`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend} is not usable ({reason}). {needs}")]
pub struct Unavailable {
    /// The backend and device asked for (`CUDA device 0`, `wgpu adapter Cpu`).
    pub backend: String,
    /// What went wrong in a first small operation on it (burn's message).
    pub reason: String,
    /// What the backend needs, and the alternative.
    pub needs: &'static str,
}

/// Work generic over the backend, run on the one a user chose ([`run_on`]): the CLI's
/// commands implement it once instead of once per backend. Not API: the binaries'
/// dispatch (library users pick a backend type, such as [`Cpu`], directly).
#[doc(hidden)]
pub trait BackendTask {
    /// What the work returns.
    type Output;
    /// Does the work on backend `B`'s `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Runs `task` on the chosen backend, after checking that a GPU backend can be used (an
/// error that says what is missing instead of burn's panic). The one place where the
/// backends built into this binary are listed. Not API, as [`BackendTask`].
#[doc(hidden)]
pub fn run_on<T: BackendTask>(choice: BackendChoice, task: T) -> anyhow::Result<T::Output> {
    match choice {
        BackendChoice::Cpu => task.run::<Cpu>(Default::default()),
        BackendChoice::Cuda { device } => gpu::cuda(device, task),
        BackendChoice::Wgpu { adapter } => gpu::wgpu(adapter, task),
    }
}

#[cfg(test)]
mod tests {
    use super::{BackendChoice, WgpuAdapter};

    #[test]
    fn backends_parse_as_the_command_line_writes_them() {
        let parse = |s: &str| s.parse::<BackendChoice>();
        assert_eq!(parse("cpu"), Ok(BackendChoice::Cpu));
        assert_eq!(parse("cuda"), Ok(BackendChoice::Cuda { device: 0 }));
        assert_eq!(parse("cuda:2"), Ok(BackendChoice::Cuda { device: 2 }));
        assert_eq!(parse("wgpu"), Ok(BackendChoice::Wgpu { adapter: WgpuAdapter::Default }));
        assert_eq!(parse("wgpu:1"), Ok(BackendChoice::Wgpu { adapter: WgpuAdapter::Discrete(1) }));
        assert_eq!(parse("wgpu:integrated:0"), Ok(BackendChoice::Wgpu { adapter: WgpuAdapter::Integrated(0) }));
        assert_eq!(parse("wgpu:virtual:3"), Ok(BackendChoice::Wgpu { adapter: WgpuAdapter::Virtual(3) }));
        assert_eq!(parse("wgpu:cpu"), Ok(BackendChoice::Wgpu { adapter: WgpuAdapter::Cpu }));
        for text in ["cpu", "cuda:2", "wgpu", "wgpu:1", "wgpu:integrated:0", "wgpu:virtual:3", "wgpu:cpu"] {
            assert_eq!(parse(text).unwrap().to_string(), text, "written back as read");
        }
        for bad in ["gpu", "cuda:x", "wgpu:integrated", "wgpu:cpu:1", ""] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("wgpu:cpu") || e.contains("not an adapter"), "{bad}: {e}");
        }
    }

    #[test]
    fn recipes_name_backends_in_ron() {
        let wgpu: BackendChoice = ron::from_str("Wgpu(adapter: Integrated(1))").unwrap();
        assert_eq!(wgpu, BackendChoice::Wgpu { adapter: WgpuAdapter::Integrated(1) });
        let cuda: BackendChoice = ron::from_str("Cuda(device: 0)").unwrap();
        assert_eq!(cuda, BackendChoice::Cuda { device: 0 });
    }
}
