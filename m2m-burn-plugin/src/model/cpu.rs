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

/// Which of our CPU kernels run: all by default; `M2M_CPU_KERNELS` names the ones to keep
/// (`conv`, `batchnorm`, comma-separated; `none` for burn's ops throughout). For
/// measuring them against burn's own ops in the same binary (docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    Conv,
    BatchNorm,
}

pub(crate) fn enabled(kernel: Kernel) -> bool {
    static CHOICE: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
    let (conv, batch_norm) = *CHOICE.get_or_init(|| match std::env::var("M2M_CPU_KERNELS") {
        Ok(list) => {
            let names: Vec<&str> = list.split(',').map(str::trim).collect();
            for name in &names {
                if !matches!(*name, "conv" | "batchnorm" | "none" | "") {
                    tracing::warn!("M2M_CPU_KERNELS: unknown kernel `{name}` (conv, batchnorm or none); ignored");
                }
            }
            (names.contains(&"conv"), names.contains(&"batchnorm"))
        }
        Err(_) => (true, true),
    });
    match kernel {
        Kernel::Conv => conv,
        Kernel::BatchNorm => batch_norm,
    }
}
