//! What our own CPU kernels (`conv`, `batch_norm`) need to run inside burn: picking the
//! CPU backend out of a generic `B`, and Flex tensors as `f32` slices.
//!
//! The dispatch is on the concrete backend type, so models stay generic over
//! `B: Backend` and users' code sees no extra trait bound.

use std::any::Any;

use burn::tensor::TensorData;

pub(crate) type FlexFloat = burn_flex::FlexTensor;

/// `Ok` when `A` is `T` (a type-level match on the backend).
pub(crate) fn cast<A: 'static, T: 'static>(value: A) -> Result<T, A> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<T>>() {
        Some(t) => Ok(t.take().expect("just filled")),
        None => Err(slot.expect("untouched")),
    }
}

/// `cast` where the caller already knows the types match (a second tensor of a backend
/// that a first one was just matched against).
pub(crate) fn same<A: 'static, T: 'static>(value: A) -> T {
    cast(value).unwrap_or_else(|_| unreachable!("same backend"))
}

/// Whether `B` is the CPU backend, with or without autodiff: where our kernels run.
pub(crate) fn is_cpu<B: 'static>() -> bool {
    use std::any::TypeId;
    let b = TypeId::of::<B>();
    b == TypeId::of::<crate::backend::Cpu>() || b == TypeId::of::<burn::backend::Flex>()
}

/// A Flex tensor as a contiguous tensor with its dimensions; no copy when it is
/// contiguous already (as every tensor our models pass is).
pub(crate) fn contiguous<const D: usize>(t: &FlexFloat) -> (FlexFloat, [usize; D]) {
    (t.to_contiguous(), t.layout().shape().dims::<D>())
}

/// The values of a contiguous `f32` tensor (callers check the dtype before dispatch).
pub(crate) fn slice(t: &FlexFloat) -> &[f32] {
    t.as_slice::<f32>().expect("a contiguous f32 tensor (dtype checked before dispatch)")
}

pub(crate) fn from_vec<const D: usize>(values: Vec<f32>, dims: [usize; D]) -> FlexFloat {
    FlexFloat::from_data(TensorData::new(values, dims))
}

/// Which of our CPU kernels run: `conv`, `fold` and `batchnorm` by default;
/// `M2M_CPU_KERNELS` names the ones to run (comma-separated: `conv` for the direct
/// convolution, `fold` for frozen BatchNorm folded into the convolution before it,
/// `batchnorm`; `none` for burn's ops throughout). For measuring each against the code it
/// replaces in the same binary (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Conv,
    Fold,
    BatchNorm,
}

impl Kernel {
    const ALL: [Kernel; 3] = [Kernel::Conv, Kernel::Fold, Kernel::BatchNorm];
    const DEFAULT: [Kernel; 3] = [Kernel::Conv, Kernel::Fold, Kernel::BatchNorm];

    fn name(self) -> &'static str {
        match self {
            Kernel::Conv => "conv",
            Kernel::Fold => "fold",
            Kernel::BatchNorm => "batchnorm",
        }
    }
}

pub(crate) fn enabled(kernel: Kernel) -> bool {
    static CHOICE: std::sync::OnceLock<Vec<Kernel>> = std::sync::OnceLock::new();
    let chosen = CHOICE.get_or_init(|| match std::env::var("M2M_CPU_KERNELS") {
        Ok(list) => {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            for name in &names {
                if !matches!(*name, "none" | "") && !Kernel::ALL.iter().any(|k| k.name() == *name) {
                    tracing::warn!("M2M_CPU_KERNELS: unknown kernel `{name}` (conv, fold, batchnorm or none); ignored");
                }
            }
            Kernel::ALL.into_iter().filter(|k| names.contains(&k.name())).collect()
        }
        Err(_) => Kernel::DEFAULT.to_vec(),
    });
    // Folding runs on the convolution's op: without it, it has nothing to run in.
    let needs_conv = kernel == Kernel::Fold;
    chosen.contains(&kernel) && (!needs_conv || chosen.contains(&Kernel::Conv))
}
